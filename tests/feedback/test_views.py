"""The feedback pages: form, diff, JSON switch, notes, undo, export; htmx and plain."""

import json
import re
from html import unescape
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from agents.models import Membership
from feedback import services
from feedback.jsonform import Change, value_hash
from feedback.models import ExecutionNote, FieldCorrection

from ..factories import AgentVersionFactory, ExecutionFactory, FieldCorrectionFactory
from .browserform import edit, form_fields

pytestmark = pytest.mark.django_db

OUTPUT = {
    "invoice_id": "INV-1",
    "vendor": {"name": "ACME", "address": {"city": "Leeds"}},
    "items": [{"sku": "a", "price": 1.5}, {"sku": "b", "price": 2}],
    "total": 3.5,
}
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def execution(agent_version):
    return ExecutionFactory(agent_version=agent_version, output=OUTPUT)


def login(client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def bob_client(client, bob):
    return login(client, bob)


def form_url(execution):
    return reverse("feedback:form", args=[execution.pk])


def fields_of(client, execution):
    response = client.get(form_url(execution), **HTMX)
    html = response.content.decode()
    form = html[html.index("<form") : html.index("</form>")]
    return form_fields(form)


def post(client, url, fields, **extra):
    return client.post(
        url,
        urlencode([tuple(f) for f in fields]),
        content_type="application/x-www-form-urlencoded",
        **extra,
    )


# ---------------------------------------------------------------------------- the form


def test_the_form_page_shows_every_leaf_as_an_input(bob_client, execution):
    response = bob_client.get(form_url(execution))
    assert response.status_code == 200
    assert b"<html" in response.content
    assert response["Vary"].count("HX-Request") == 1
    names = [n for n, _ in fields_of(bob_client, execution) if n.startswith("v|")]
    pointers = [n.split("|", 4)[4] for n in names]
    # PostgreSQL's jsonb keeps its own key order, so compare as a set.
    assert sorted(pointers) == sorted(
        [
            "/invoice_id",
            "/vendor/name",
            "/vendor/address/city",
            "/items/0/sku",
            "/items/0/price",
            "/items/1/sku",
            "/items/1/price",
            "/total",
        ]
    )


def test_htmx_gets_only_the_form(bob_client, execution):
    response = bob_client.get(form_url(execution), **HTMX)
    html = response.content.decode()
    assert "<html" not in html and html.strip().startswith('<div id="feedback-form"')
    # A history restore must get the whole page, never a fragment.
    response = bob_client.get(form_url(execution), HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert b"<html" in response.content


def test_form_query_count_does_not_grow_with_corrections(
    bob_client, execution, django_assert_num_queries
):
    FieldCorrectionFactory(execution=execution, path="/total", value_before=3.5, value_after=4)
    bob_client.get(form_url(execution))  # the first visit stores the workspace in the session
    # Session, user, membership, execution, corrections.
    with django_assert_num_queries(5) as first:
        bob_client.get(form_url(execution), **HTMX)
    for i in range(20):
        FieldCorrectionFactory(
            execution=execution, path="/total", value_before=4 + i, value_after=5 + i
        )
    with django_assert_num_queries(len(first.captured_queries)):
        response = bob_client.get(form_url(execution), **HTMX)
    assert "corrected" in response.content.decode()


def test_saving_a_nested_field_with_htmx_swaps_the_form(bob_client, bob, execution):
    fields = edit(fields_of(bob_client, execution), "/vendor/address/city", "York")
    fields.append(["_comment", "From the PDF"])
    response = post(bob_client, form_url(execution), fields, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith('<div id="feedback-form"') and "Saved 1 correction." in html
    assert json.loads(response["HX-Trigger"]) == {"feedback-changed": {"corrections": 1}}
    (c,) = FieldCorrection.objects.all()
    assert (c.path, c.value_before, c.value_after, c.author, c.comment) == (
        "/vendor/address/city",
        "Leeds",
        "York",
        bob,
        "From the PDF",
    )
    # The fresh form is based on the new value: saving it untouched changes nothing.
    assert 'value="York"' in html


def test_saving_without_javascript_redirects(bob_client, execution):
    fields = edit(fields_of(bob_client, execution), "/items/1/price", "2.25")
    fields = [f for f in fields if f[0] != "_next"] + [["_next", "/executions/"]]
    response = post(bob_client, form_url(execution), fields)
    assert response.status_code == 302 and response["Location"] == "/executions/"
    assert FieldCorrection.objects.get().value_after == 2.25


def test_an_offsite_next_is_ignored(bob_client, execution):
    fields = edit(fields_of(bob_client, execution), "/total", "4")
    fields = [f for f in fields if f[0] != "_next"] + [["_next", "https://evil.example/"]]
    response = post(bob_client, form_url(execution), fields)
    assert response["Location"] == form_url(execution)


def test_a_wrong_type_is_shown_beside_the_field_and_nothing_is_saved(bob_client, execution):
    fields = edit(fields_of(bob_client, execution), "/items/0/price", "cheap")
    fields = edit(fields, "/invoice_id", "INV-2")
    response = post(bob_client, form_url(execution), fields, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    leaf = html[html.index('data-ptr="/items/0/price"') :]
    leaf = leaf[: leaf.index("</div></div>")]
    assert "Enter a number" in leaf and 'value="cheap"' in leaf
    assert 'value="INV-2"' in html  # the other edit is kept for the next try
    assert FieldCorrection.objects.count() == 0
    response = post(bob_client, form_url(execution), fields)
    assert response.status_code == 422


def test_a_schema_violation_is_shown_beside_the_field(bob, client):
    version = AgentVersionFactory(
        agent__workspace=bob.memberships.get().workspace,
        version="typed",
        output_schema={
            "type": "object",
            "properties": {
                "total": {"type": "number", "minimum": 0},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"sku": {"type": "string", "maxLength": 3}},
                    },
                },
            },
        },
    )
    execution = ExecutionFactory(agent_version=version, output=OUTPUT)
    login(client, bob)
    fields = edit(fields_of(client, execution), "/total", "-1")
    fields = edit(fields, "/items/1/sku", "toolong")
    response = post(client, form_url(execution), fields, **HTMX)
    html = response.content.decode()
    assert "-1 is less than the minimum of 0" in html
    sku = html[html.index('data-ptr="/items/1/sku"') :]
    assert "is too long" in sku[: sku.index("</div></div>")]
    assert FieldCorrection.objects.count() == 0


def test_a_stale_save_is_refused_showing_the_newer_value_and_who(client, bob, alice, execution):
    bob_client = login(Client(), bob)
    alice_client = login(Client(), alice)
    bobs = edit(fields_of(bob_client, execution), "/vendor/name", "ACME Ltd")
    alices = edit(fields_of(alice_client, execution), "/vendor/name", "ACME Corp")
    assert post(alice_client, form_url(execution), alices, **HTMX).status_code == 200

    response = post(bob_client, form_url(execution), bobs)
    assert response.status_code == 409
    response = post(bob_client, form_url(execution), bobs, **HTMX)
    raw = response.content.decode()
    html = unescape(raw)
    assert "changed to “ACME Corp” by alice" in html
    assert 'value="ACME Ltd"' in html  # bob's value is not lost
    assert FieldCorrection.objects.filter(author=bob).count() == 0

    # Saving the re-rendered form again is a deliberate overwrite of alice's value.
    again = form_fields(raw[raw.index("<form") : raw.index("</form>")])
    response = post(bob_client, form_url(execution), again, **HTMX)
    assert "Saved 1 correction." in response.content.decode()
    latest = FieldCorrection.objects.order_by("id").last()
    assert (latest.author, latest.value_before, latest.value_after) == (
        bob,
        "ACME Corp",
        "ACME Ltd",
    )


def test_untouched_fields_never_undo_someone_elses_correction(client, bob, alice, execution):
    bob_client = login(Client(), bob)
    alice_client = login(Client(), alice)
    bobs = edit(fields_of(bob_client, execution), "/total", "9")
    alices = edit(fields_of(alice_client, execution), "/vendor/name", "ACME Corp")
    post(alice_client, form_url(execution), alices, **HTMX)
    response = post(bob_client, form_url(execution), bobs, **HTMX)
    assert "Saved 1 correction." in response.content.decode()
    from feedback.selectors import execution_corrected

    out = execution_corrected(workspace=execution.workspace, execution=execution).output
    assert out["vendor"]["name"] == "ACME Corp" and out["total"] == 9


def test_nothing_changed_saves_nothing(bob_client, execution):
    response = post(bob_client, form_url(execution), fields_of(bob_client, execution), **HTMX)
    assert "Nothing changed." in response.content.decode()
    assert FieldCorrection.objects.count() == 0


def test_a_tampered_form_is_a_clear_400(bob_client, execution):
    response = post(bob_client, form_url(execution), [["v|string|x|y|/nope/deeper", "1"]])
    assert response.status_code == 400
    assert "Not saved:" in response.content.decode()


@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_viewers_and_operators_read_only(client, execution, who, request):
    user = request.getfixturevalue(who)
    login(client, user)
    FieldCorrectionFactory(execution=execution, path="/total", value_before=3.5, value_after=4)
    response = client.get(form_url(execution))
    html = response.content.decode()
    assert "data-jf-form" not in html and "only reviewers and admins" in html
    assert "readonly" in html and "Save corrections" not in html
    assert 'id="feedback-note-form"' not in html
    diff = client.get(reverse("feedback:diff", args=[execution.pk])).content.decode()
    assert "Undo" not in diff and "/total" in diff

    response = post(client, form_url(execution), [["v|number|x|y|/total", "9"]])
    assert response.status_code == 403
    assert "Only reviewers and admins" in response.content.decode()
    for url, data in [
        (reverse("feedback:notes", args=[execution.pk]), {"rating": "up"}),
        (reverse("feedback:undo", args=[execution.pk, FieldCorrection.objects.get().pk]), {}),
    ]:
        assert client.post(url, data).status_code == 403
    assert FieldCorrection.objects.count() == 1 and ExecutionNote.objects.count() == 0


def test_another_workspaces_execution_is_404_everywhere(charlie_client, execution):
    c = FieldCorrectionFactory(execution=execution, path="/total", value_before=3.5, value_after=4)
    for url in [
        form_url(execution),
        reverse("feedback:diff", args=[execution.pk]),
        reverse("feedback:notes", args=[execution.pk]),
    ]:
        assert charlie_client.get(url).status_code == 404, url
    for url in [form_url(execution), reverse("feedback:notes", args=[execution.pk])]:
        assert charlie_client.post(url, {"rating": "up"}).status_code == 404, url
    undo = reverse("feedback:undo", args=[execution.pk, c.pk])
    assert charlie_client.post(undo).status_code == 404
    agent = execution.agent
    export = reverse("feedback:export", args=[agent.slug, execution.agent_version.pk])
    assert charlie_client.get(export).status_code == 404


def test_an_execution_without_output_says_so(bob_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, output=None, status="running")
    html = bob_client.get(form_url(execution)).content.decode()
    assert "no output to correct yet" in html


# ---------------------------------------------------------------------------- diff, JSON


@pytest.fixture
def corrected_execution(execution, bob):
    FieldCorrectionFactory(
        execution=execution,
        path="/vendor/name",
        value_before="ACME",
        value_after="ACME Ltd",
        author=bob,
        comment="Letterhead",
    )
    FieldCorrectionFactory(
        execution=execution,
        path="/items/1",
        op="remove",
        value_before={"sku": "b", "price": 2},
        value_after=None,
        author=bob,
    )
    return execution


def test_the_diff_lists_each_field_with_before_after_who(bob_client, corrected_execution):
    url = reverse("feedback:diff", args=[corrected_execution.pk])
    response = bob_client.get(url, **HTMX)
    diffs = response.context["diffs"]
    assert sorted((d.kind, d.path, d.author) for d in diffs) == [
        ("changed", "/vendor/name", "bob"),
        ("removed", "/items/1", "bob"),
    ]
    html = unescape(response.content.decode())
    assert '"ACME"' in html and '"ACME Ltd"' in html and "Letterhead" in html
    split = bob_client.get(url + "?mode=split").content.decode()
    assert '<table class="table fb-split">' in split and 'aria-current="true">Side by side' in split
    bad = bob_client.get(url + "?mode=sideways")
    assert bad.status_code == 400 and "Unknown diff layout “sideways”" in bad.content.decode()


def test_diff_query_count_does_not_grow_with_corrections(
    bob_client, corrected_execution, django_assert_num_queries
):
    url = reverse("feedback:diff", args=[corrected_execution.pk])
    bob_client.get(url)
    with django_assert_num_queries(5) as first:
        bob_client.get(url, **HTMX)
    for i in range(10):
        FieldCorrectionFactory(
            execution=corrected_execution, path="/total", value_before=3.5 + i, value_after=4.5 + i
        )
    with django_assert_num_queries(len(first.captured_queries)):
        bob_client.get(url, **HTMX)


def test_the_json_view_switches_between_original_and_corrected(bob_client, corrected_execution):
    url = reverse("feedback:diff", args=[corrected_execution.pk])
    original = bob_client.get(url + "?mode=original", **HTMX).context["json_text"]
    corrected = bob_client.get(url + "?mode=corrected", **HTMX).context["json_text"]
    assert json.loads(original) == OUTPUT
    assert json.loads(corrected)["vendor"]["name"] == "ACME Ltd"
    assert len(json.loads(corrected)["items"]) == 1


def test_undo_from_the_history(bob_client, corrected_execution):
    name = FieldCorrection.objects.get(path="/vendor/name")
    url = reverse("feedback:undo", args=[corrected_execution.pk, name.pk])
    response = bob_client.post(url, **HTMX)
    assert "is back to its earlier value" in response.content.decode()
    assert "feedback-changed" in response["HX-Trigger"]
    latest = FieldCorrection.objects.order_by("id").last()
    assert (latest.value_before, latest.value_after) == ("ACME Ltd", "ACME")
    # Undone already: that correction's value is no longer there to undo.
    response = bob_client.post(url, {"_next": "/executions/"})
    assert response.status_code == 302
    assert FieldCorrection.objects.count() == 3


# ---------------------------------------------------------------------------- notes


def test_a_note_from_the_header_with_htmx(bob_client, bob, execution):
    url = reverse("feedback:notes", args=[execution.pk])
    response = bob_client.post(
        url, {"rating": "down", "text": "Wrong total", "_from": "header"}, **HTMX
    )
    html = response.content.decode()
    assert html.strip().startswith('<details class="fb-note-menu" id="feedback-note-form"')
    assert "feedback-changed" in response["HX-Trigger"]
    note = ExecutionNote.objects.get()
    assert (note.author, note.rating, note.text) == (bob, "down", "Wrong total")
    listing = bob_client.get(url, **HTMX).content.decode()
    assert "Wrong total" in listing and "bob" in listing and "Needs work" in listing


def test_a_note_without_javascript_and_its_errors(bob_client, execution):
    url = reverse("feedback:notes", args=[execution.pk])
    response = bob_client.post(url, {"rating": "", "text": "", "_next": "/executions/"})
    assert response.status_code == 422
    assert "Give a rating or write a note." in response.content.decode()
    response = bob_client.post(url, {"rating": "up", "_next": "/executions/"})
    assert response.status_code == 302
    assert ExecutionNote.objects.get().rating == "up"


# ---------------------------------------------------------------------------- export


def test_export_is_jsonl_of_input_original_and_corrected(bob_client, execution, bob):
    """The runs the export takes are the ones a reviewer corrected through the service
    (which keeps their correction count), not ones marked by hand."""
    membership = Membership.objects.get(user=bob, workspace=execution.workspace)
    services.field_corrections_create(
        execution=execution,
        membership=membership,
        changes=[
            Change("replace", "/vendor/name", "ACME Ltd", "/vendor/name", value_hash("ACME"), "")
        ],
    )
    noted = ExecutionFactory(agent_version=execution.agent_version, output=OUTPUT)
    services.execution_note_create(execution=noted, membership=membership, text="Looks right")
    ExecutionFactory(agent_version=execution.agent_version, output=OUTPUT)  # untouched
    corrected_execution = execution
    url = reverse(
        "feedback:export",
        args=[corrected_execution.agent.slug, corrected_execution.agent_version.pk],
    )
    response = bob_client.get(url)
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert "attachment" in response["Content-Disposition"]
    lines = [json.loads(x) for x in b"".join(response.streaming_content).splitlines()]
    assert [x["execution_id"] for x in lines] == [str(corrected_execution.pk)]
    (row,) = lines
    assert row["input"] == corrected_execution.input
    assert row["original_output"] == OUTPUT
    assert row["corrected_output"] == {**OUTPUT, "vendor": {**OUTPUT["vendor"], "name": "ACME Ltd"}}
    assert bob_client.get(url + "?include=all").status_code == 400


def test_the_agent_page_shows_field_accuracy_worst_first(bob_client, agent_version):
    for i in range(4):
        execution = ExecutionFactory(agent_version=agent_version, output=OUTPUT, note_count=1)
        if i < 3:
            FieldCorrectionFactory(
                execution=execution, path="/total", value_before=3.5, value_after=4
            )
        if i < 1:
            FieldCorrectionFactory(
                execution=execution, path="/items/1/sku", value_before="b", value_after="B"
            )
    response = bob_client.get(reverse("agents:detail", args=[agent_version.agent.slug]))
    html = response.content.decode()
    section = html[html.index('id="field-accuracy"') :]
    rows = re.findall(
        r'<tr data-path="([^"]+)">.*?<td class="num">(\d+)</td>\s*'
        r'<td class="num">(\d+)</td>\s*<td class="num">(\d+%)</td>',
        section,
        re.S,
    )
    assert rows == [("/total", "4", "3", "75%"), ("/items/*/sku", "4", "1", "25%")]
    export = reverse("feedback:export", args=[agent_version.agent.slug, agent_version.pk])
    assert export in section


def test_a_form_too_big_for_djangos_field_limit_says_so(bob_client, execution, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 12
    html = bob_client.get(form_url(execution), **HTMX).content.decode()
    assert "the server accepts at most 12 in one request" in html
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
    html = bob_client.get(form_url(execution), **HTMX).content.decode()
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" not in html
