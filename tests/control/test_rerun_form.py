"""Rerun pre-filled (edit, then start) beside "Rerun as is"; Cancel asks once on the
detail page; the header's Edit link to the version's configuration."""

import json

import pytest
from django.urls import reverse

from executions.models import Execution, Source, Status
from tests.executions.detail_html import parse

from ..factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def finished(agent_version):
    return ExecutionFactory(
        agent_version=agent_version,
        status=Status.FAILED,
        input={"file": "https://example.com/a.pdf"},
        metadata={"ticket": "OPS-1"},
        priority=2,
    )


def one(node, tag, name, value=None):
    """The one `tag` under `node` whose attribute `name` is `value` (or merely present)."""
    found = [n for n in node.select(tag, attr=name) if value is None or n.attrs.get(name) == value]
    assert len(found) == 1, f"expected one {tag}[{name}={value}], found {len(found)}"
    return found[0]


def rerun_url(execution):
    return reverse("executions:rerun", args=[execution.pk])


def test_rerun_opens_a_form_filled_with_the_runs_parameters(operator_client, finished):
    response = operator_client.get(rerun_url(finished))
    assert response.status_code == 200
    form = parse(response.content).one("form", id="rerun-form")
    assert json.loads(one(form, "textarea", "name", "inputs").text) == finished.input
    assert json.loads(one(form, "textarea", "name", "metadata").text) == finished.metadata
    selected = one(one(form, "select", "name", "priority"), "option", "selected")
    assert selected.attrs["value"] == "high"
    version = one(one(form, "select", "name", "version"), "option", "selected")
    assert version.attrs["value"] == str(finished.agent_version_id)
    assert not [t for t in form.select("textarea") if t.attrs.get("name") == "batch_name"]


def test_the_edited_rerun_starts_with_the_edits_and_links_back(operator_client, operator, finished):
    response = operator_client.post(
        rerun_url(finished),
        {
            "version": finished.agent_version_id,
            "inputs": '{"file": "https://example.com/b.pdf"}',
            "priority": "low",
            "metadata": '{"ticket": "OPS-2"}',
        },
    )
    rerun = Execution.objects.get(rerun_of=finished)
    assert response.status_code == 302 and response.url == rerun.get_absolute_url()
    assert rerun.input == {"file": "https://example.com/b.pdf"}
    assert rerun.metadata == {"ticket": "OPS-2"} and rerun.priority == 0
    assert rerun.source == Source.RERUN and rerun.triggered_by == operator
    assert rerun.status == Status.QUEUED


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ('{"file": 3}', "inputs.file: 3 is not of type 'string'"),
        ("[{}]", "inputs: a rerun takes one JSON object, not a list."),
        ("{nope", "inputs: not valid JSON"),
    ],
)
def test_a_bad_edit_is_shown_beside_its_field_and_starts_nothing(
    operator_client, finished, inputs, message
):
    version = finished.agent_version
    version.input_schema = {"type": "object", "properties": {"file": {"type": "string"}}}
    version.save()
    response = operator_client.post(
        rerun_url(finished),
        {"version": finished.agent_version_id, "inputs": inputs, "priority": "normal"},
    )
    assert response.status_code == 400
    field = parse(response.content).one("div", cls="has-error")
    assert message in field.text
    assert not Execution.objects.filter(rerun_of=finished).exists()


def test_rerun_as_is_stays_one_click(operator_client, finished):
    response = operator_client.post(rerun_url(finished))
    rerun = Execution.objects.get(rerun_of=finished)
    assert response.url == rerun.get_absolute_url()
    assert (rerun.input, rerun.metadata, rerun.priority) == (
        finished.input,
        finished.metadata,
        finished.priority,
    )


def test_the_detail_page_offers_both_reruns(operator_client, finished):
    doc = parse(operator_client.get(finished.get_absolute_url()).content)
    actions = doc.one("div", id="run-actions")
    assert one(actions, "a", "data-action", "rerun-edit").attrs["href"] == rerun_url(finished)
    button = one(actions, "button", "data-action", "rerun")
    assert button.text.strip() == "Rerun as is"


def test_a_viewer_cannot_open_the_rerun_form(client, viewer, finished):
    client.force_login(viewer)
    assert client.get(rerun_url(finished)).status_code == 403


def test_another_workspaces_run_is_404(client, charlie, finished):
    client.force_login(charlie)
    assert client.get(rerun_url(finished)).status_code == 404


def test_a_version_of_another_workspace_is_refused(operator_client, finished):
    foreign = AgentVersionFactory()
    response = operator_client.post(
        rerun_url(finished), {"version": foreign.pk, "inputs": "{}", "priority": "normal"}
    )
    assert response.status_code == 400
    assert "version" in parse(response.content).one("div", cls="has-error").text.lower()
    assert not Execution.objects.filter(rerun_of=finished).exists()


# --- Cancel asks once ---------------------------------------------------------------------


def test_cancel_asks_before_it_cancels(operator_client, agent_version):
    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    doc = parse(operator_client.get(running.get_absolute_url()).content)
    ask = doc.one("details", cls="cancel-pop")
    assert ask.one("summary").text.strip() == "Cancel"
    form = ask.one("form")
    assert form.attrs["action"] == reverse("executions:cancel", args=[running.pk])
    assert "Cancel this run?" in form.text
    response = operator_client.post(form.attrs["action"], {"reason": "Duplicate"})
    assert response.status_code == 302
    running.refresh_from_db()
    assert running.status == Status.CANCELLED and running.failure_reason == "Duplicate"


# --- Edit ---------------------------------------------------------------------------------


def test_edit_links_to_the_versions_configuration(client, alice, operator, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    client.force_login(operator)
    doc = parse(client.get(execution.get_absolute_url()).content)
    edit = one(doc, "a", "data-action", "edit")
    assert edit.attrs["href"] == (
        f"{agent_version.agent.get_absolute_url()}#version-{agent_version.pk}"
    )
    assert not [a for a in doc.select("a") if a.attrs.get("data-action") == "edit-admin"]
    agent_page = parse(client.get(edit.attrs["href"].split("#")[0]).content)
    row = agent_page.one("tr", id=f"version-{agent_version.pk}")
    assert json.loads(row.one("pre").text) == agent_version.config

    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    doc = parse(client.get(execution.get_absolute_url()).content)
    admin = one(doc, "a", "data-action", "edit-admin")
    assert admin.attrs["href"] == reverse(
        "admin:agents_agentversion_change", args=[agent_version.pk]
    )
