"""Dashboard actions: who may do what, legal and illegal actions, the run form, the
review queue, bulk cancel and schedules."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from executions.models import Batch, Execution, Source, Status

from ..factories import AgentVersionFactory, ExecutionFactory, ScheduleFactory
from .conftest import elements, form_actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


def url(name, execution):
    return reverse(f"executions:{name}", args=[execution.pk])


def flashed(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- who may do what ------------------------------------------------------------------


def test_an_operator_cancels_a_running_execution(login, operator, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    response = login(operator).post(url("cancel", execution))
    assert response.status_code == 302 and response.url == execution.get_absolute_url()
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED
    assert execution.failure_reason == "Cancelled by olivia."
    assert flashed(response) == ["Execution cancelled. Its runtime has been told to stop."]


@pytest.mark.parametrize("who", ["viewer", "bob"])
@pytest.mark.parametrize("action", ["cancel", "rerun"])
def test_viewers_and_reviewers_cannot_cancel_or_rerun(request, login, agent_version, who, action):
    status = Status.RUNNING if action == "cancel" else Status.COMPLETED
    execution = ExecutionFactory(agent_version=agent_version, status=status)
    response = login(request.getfixturevalue(who)).post(url(action, execution))
    assert response.status_code == 403
    assert response.context["who"] == "operators and admins"
    assert b"Only operators and admins may" in response.content
    assert Execution.objects.get(pk=execution.pk).status == status
    assert Execution.objects.count() == 1


@pytest.mark.parametrize("who", ["viewer", "operator"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_reviewers_and_admins_decide(request, login, agent_version, who, action):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.AWAITING_APPROVAL)
    response = login(request.getfixturevalue(who)).post(url(action, execution), {"note": "ok"})
    assert response.status_code == 403
    assert response.context["who"] == "reviewers and admins"
    execution.refresh_from_db()
    assert execution.status == Status.AWAITING_APPROVAL and execution.decided_by is None


def test_a_reviewer_approves_with_a_note(login, bob, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.AWAITING_APPROVAL)
    next_url = reverse("executions:approvals")
    response = login(bob).post(url("approve", execution), {"note": "Fine.", "next": next_url})
    assert response.status_code == 302 and response.url == next_url
    execution.refresh_from_db()
    assert (execution.status, execution.decided_by, execution.approval_note) == (
        Status.RUNNING,
        bob,
        "Fine.",
    )


def test_an_admin_rejects_with_a_note(login, alice, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.AWAITING_APPROVAL)
    login(alice).post(url("reject", execution), {"note": "Wrong vendor"})
    execution.refresh_from_db()
    assert execution.status == Status.REJECTED
    assert execution.failure_reason == "Rejected by alice: Wrong vendor"


def test_another_workspaces_execution_is_a_404(login, charlie, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    for action in ["cancel", "rerun", "approve", "reject"]:
        assert login(charlie).post(url(action, execution)).status_code == 404
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING


def test_actions_are_posts_only(login, alice, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    assert login(alice).get(url("cancel", execution)).status_code == 405
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING


def test_anonymous_users_are_sent_to_log_in(client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    response = client.post(url("cancel", execution))
    assert response.status_code == 302 and "/accounts/login/" in response.url


# --- legal and illegal ----------------------------------------------------------------


def test_an_illegal_action_says_why_and_changes_nothing(login, alice, agent_version):
    done = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    response = login(alice).post(url("cancel", done))
    assert response.status_code == 302 and response.url == done.get_absolute_url()
    assert flashed(response) == [
        f"Execution {done.pk} is completed, which is final; it cannot become cancelled."
    ]
    assert Execution.objects.get(pk=done.pk).status == Status.COMPLETED

    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    response = login(alice).post(url("rerun", running))
    assert "only a finished execution can be rerun" in flashed(response)[-1]
    assert Execution.objects.count() == 2

    response = login(alice).post(url("approve", done))
    assert "only an execution awaiting approval can be approved" in flashed(response)[-1]


def test_rerun_opens_the_new_execution(login, operator, agent_version):
    original = ExecutionFactory(agent_version=agent_version, status=Status.FAILED)
    response = login(operator).post(url("rerun", original))
    rerun = Execution.objects.get(rerun_of=original)
    assert response.url == rerun.get_absolute_url()
    assert rerun.source == Source.RERUN and rerun.triggered_by == operator


def test_a_next_url_elsewhere_is_ignored(login, alice, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    response = login(alice).post(url("cancel", execution), {"next": "https://evil.example/"})
    assert response.url == execution.get_absolute_url()


# --- the buttons on the detail page ---------------------------------------------------


def action_buttons(client, execution):
    response = client.get(execution.get_absolute_url())
    assert response.status_code == 200
    return {
        name
        for name in ["cancel", "rerun", "approve", "reject"]
        if url(name, execution) in form_actions(response.content)
    }


@pytest.mark.parametrize(
    ("who", "status", "expected"),
    [
        ("operator", Status.RUNNING, {"cancel"}),
        ("operator", Status.QUEUED, {"cancel"}),
        ("operator", Status.COMPLETED, {"rerun"}),
        ("operator", Status.AWAITING_APPROVAL, {"cancel"}),
        ("bob", Status.AWAITING_APPROVAL, {"approve", "reject"}),
        ("bob", Status.RUNNING, set()),
        ("alice", Status.AWAITING_APPROVAL, {"approve", "reject", "cancel"}),
        ("alice", Status.FAILED, {"rerun"}),
        ("viewer", Status.RUNNING, set()),
        ("viewer", Status.COMPLETED, set()),
    ],
)
def test_the_detail_page_shows_only_the_allowed_actions(
    request, login, agent_version, who, status, expected
):
    execution = ExecutionFactory(agent_version=agent_version, status=status)
    assert action_buttons(login(request.getfixturevalue(who)), execution) == expected


def test_no_rerun_button_when_the_agent_is_gone(login, alice, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    agent_version.agent.delete()
    assert action_buttons(login(alice), execution) == set()


def test_the_delivery_log_is_on_the_request_tab(login, alice, agent_version):
    from executions.models import WebhookDelivery

    execution = ExecutionFactory(agent_version=agent_version, status=Status.FAILED)
    WebhookDelivery.objects.create(
        execution=execution, attempt=1, url="http://rt.example/hook", status_code=503,
        error="HTTP 503 Service Unavailable",
    )  # fmt: skip
    WebhookDelivery.objects.create(
        execution=execution, attempt=2, url="http://rt.example/hook", status_code=200,
        succeeded=True, duration_ms=12,
    )  # fmt: skip
    response = login(alice).get(execution.get_absolute_url() + "?tab=request")
    rows = elements(response.content, "tr", **{"class": "delivery is-failed"})
    assert len(rows) == 1 and "HTTP 503 Service Unavailable" in rows[0]["text"]
    [ok] = elements(response.content, "tr", **{"class": "delivery is-ok"})
    assert "#2" in ok["text"] and "200 delivered" in ok["text"] and "12 ms" in ok["text"]


# --- the run form ---------------------------------------------------------------------


@pytest.fixture
def schema_version(workspace):
    return AgentVersionFactory(
        agent__workspace=workspace,
        agent__name="receipt-reader",
        input_schema={
            "type": "object",
            "properties": {"file": {"type": "string"}},
            "required": ["file"],
        },
    )


def test_the_run_form_offers_this_workspaces_versions(login, operator, schema_version):
    AgentVersionFactory(agent__name="elsewhere")  # another workspace
    response = login(operator).get(reverse("executions:run"), {"agent": "receipt-reader"})
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields["version"].queryset) == [schema_version]
    # The inputs box starts from the input schema.
    assert form.initial["inputs"] == '{\n  "file": ""\n}'
    assert reverse("executions:run") + "?agent=receipt-reader" in form_actions(response.content)


def test_running_from_the_form_queues_an_execution(login, operator, schema_version):
    response = login(operator).post(
        reverse("executions:run"),
        {
            "version": schema_version.pk,
            "inputs": '{"file": "r.jpg"}',
            "priority": "high",
            "metadata": '{"ticket": "OPS-1"}',
        },
    )
    execution = Execution.objects.get()
    assert response.status_code == 302 and response.url == execution.get_absolute_url()
    assert execution.status == Status.QUEUED and execution.source == Source.DASHBOARD
    assert execution.input == {"file": "r.jpg"} and execution.metadata == {"ticket": "OPS-1"}
    assert execution.get_priority_display() == "high" and execution.triggered_by == operator


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ('{"file": ', "inputs: not valid JSON (Expecting value at line 1, column 9)."),
        ("{}", "inputs: 'file' is a required property"),
        ("[1, 2]", "inputs[0]: each item of the list must be a JSON object."),
        ('"a"', "inputs: must be a JSON object or a list of them, not str."),
    ],
)
def test_bad_inputs_are_shown_next_to_the_field(login, operator, schema_version, inputs, error):
    response = login(operator).post(
        reverse("executions:run"),
        {"version": schema_version.pk, "inputs": inputs, "priority": "normal"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["inputs"] == [error]
    assert not Execution.objects.exists()


def test_a_list_of_inputs_runs_as_one_batch(login, operator, schema_version):
    response = login(operator).post(
        reverse("executions:run"),
        {
            "version": schema_version.pk,
            "inputs": '[{"file": "1.jpg"}, {"file": "2.jpg"}]',
            "priority": "low",
            "batch_name": "Receipts of May",
        },
    )
    batch = Batch.objects.get()
    assert response.url == batch.get_absolute_url()
    assert batch.name == "Receipts of May" and batch.executions.count() == 2


def test_viewers_cannot_open_or_post_the_run_form(login, viewer, schema_version):
    client = login(viewer)
    assert client.get(reverse("executions:run")).status_code == 403
    response = client.post(
        reverse("executions:run"), {"version": schema_version.pk, "inputs": '{"file": "a"}'}
    )
    assert response.status_code == 403
    assert not Execution.objects.exists()


def test_the_agent_page_has_the_run_form_for_operators_only(
    login, operator, viewer, schema_version
):
    agent_url = schema_version.agent.get_absolute_url()
    response = login(operator).get(agent_url)
    assert reverse("executions:run") + "?agent=receipt-reader" in form_actions(response.content)
    response = login(viewer).get(agent_url)
    assert not any("/executions/run/" in a for a in form_actions(response.content))
    assert b"Only operators and admins can run agents" in response.content


# --- the review queue -----------------------------------------------------------------


def test_the_review_queue_lists_waiting_executions_oldest_first(
    login, bob, agent_version, django_assert_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    newer = ExecutionFactory(
        agent_version=agent_version, status=Status.AWAITING_APPROVAL, paused_at=now,
        approval_request={"action": "send email", "to": "cfo@example.com"},
    )  # fmt: skip
    # Paused an hour ago, written to since: it still waited longest.
    older = ExecutionFactory(
        agent_version=agent_version, status=Status.AWAITING_APPROVAL,
        paused_at=now - timedelta(hours=1), updated_at=now + timedelta(seconds=1),
    )  # fmt: skip
    ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    ExecutionFactory(status=Status.AWAITING_APPROVAL)  # another workspace
    client = login(bob)
    client.get(reverse("executions:approvals"))  # warm the session

    # session, user, membership, the workspace switcher, count, one page of rows
    with django_assert_num_queries(6):
        response = client.get(reverse("executions:approvals"))

    assert list(response.context["page"]) == [older, newer]
    actions = form_actions(response.content)
    assert {url("approve", older), url("reject", older), url("approve", newer)} <= actions
    assert b"cfo@example.com" in response.content


def test_viewers_see_the_queue_without_the_buttons(login, viewer, agent_version):
    ExecutionFactory(agent_version=agent_version, status=Status.AWAITING_APPROVAL)
    response = login(viewer).get(reverse("executions:approvals"))
    assert response.status_code == 200 and response.context["can_review"] is False
    assert not any("approve" in a for a in form_actions(response.content))


# --- bulk cancel ----------------------------------------------------------------------


def test_bulk_cancel_from_the_table(login, operator, agent_version):
    running = ExecutionFactory.create_batch(2, agent_version=agent_version, status=Status.RUNNING)
    done = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    response = login(operator).post(
        reverse("executions:bulk_cancel"),
        {"ids": [str(e.pk) for e in [*running, done]], "next": "/executions/?status=running"},
    )
    assert response.url == "/executions/?status=running"
    assert flashed(response) == ["Cancelled 2 executions. 1 had already ended and was left alone."]
    assert set(Execution.objects.values_list("status", flat=True)) == {
        Status.CANCELLED,
        Status.COMPLETED,
    }


def test_the_table_asks_to_confirm_a_bulk_cancel(login, operator, viewer, agent_version):
    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    done = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    foreign = ExecutionFactory(status=Status.RUNNING)

    table = login(operator).get(reverse("executions:list"))
    [button] = elements(table.content, "button", **{"data-bulk-cancel": ""})
    assert button["formaction"] == reverse("executions:bulk_cancel") and button["form"] == (
        "bulk-form"
    )
    table = login(viewer).get(reverse("executions:list"))
    assert not elements(table.content, "button", **{"data-bulk-cancel": ""})

    confirm = login(operator).get(
        reverse("executions:bulk_cancel"),
        {"ids": [running.pk, done.pk, foreign.pk]},
        HTTP_REFERER="http://testserver/executions/?status=running",
    )
    assert confirm.status_code == 200
    assert set(confirm.context["executions"]) == {running, done}
    assert confirm.context["active"] == [running]
    hidden = {i["value"] for i in elements(confirm.content, "input", name="ids")}
    assert hidden == {str(running.pk)}
    nexts = {i["value"] for i in elements(confirm.content, "input", name="next")}
    assert "http://testserver/executions/?status=running" in nexts
    # Looking changes nothing.
    assert Execution.objects.get(pk=running.pk).status == Status.RUNNING


def test_bulk_cancel_refuses_viewers_and_bad_ids(login, viewer, operator, agent_version):
    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    assert (
        login(viewer).post(reverse("executions:bulk_cancel"), {"ids": [running.pk]}).status_code
        == 403
    )
    response = login(operator).post(reverse("executions:bulk_cancel"), {"ids": ["nope"]})
    assert flashed(response) == ["ids: 'nope' is not an execution id; nothing was cancelled."]
    assert Execution.objects.get().status == Status.RUNNING


# --- schedules ------------------------------------------------------------------------


def test_operators_enable_and_disable_schedules(login, operator, viewer, agent_version):
    schedule = ScheduleFactory(agent_version=agent_version, enabled=True)
    toggle = reverse("executions:schedule_toggle", args=[schedule.pk])
    assert login(viewer).post(toggle, {"enabled": "0"}).status_code == 403
    response = login(operator).post(toggle, {"enabled": "0"})
    assert response.url == agent_version.agent.get_absolute_url()
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_run_at is None
    login(operator).post(toggle, {"enabled": "1"})
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_run_at is not None
    page = login(operator).get(agent_version.agent.get_absolute_url())
    assert toggle in form_actions(page.content)


def test_another_workspaces_schedule_is_a_404(login, charlie, agent_version):
    schedule = ScheduleFactory(agent_version=agent_version)
    toggle = reverse("executions:schedule_toggle", args=[schedule.pk])
    assert login(charlie).post(toggle, {"enabled": "0"}).status_code == 404


def test_the_live_stream_rerenders_the_buttons_for_the_viewers_role(
    login, operator, viewer, agent_version
):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    stream_url = reverse("executions:stream", args=[execution.pk]) + "?once=1"

    body = b"".join(login(operator).get(stream_url).streaming_content)
    assert url("cancel", execution) in form_actions(body.replace(b"\ndata: ", b"\n"))
    assert b"csrfmiddlewaretoken" in body

    body = b"".join(login(viewer).get(stream_url).streaming_content)
    assert url("cancel", execution) not in form_actions(body.replace(b"\ndata: ", b"\n"))
