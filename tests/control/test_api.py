"""The control plane's JSON API against a real local webhook receiver."""

import json

import pytest
from django.test import Client
from werkzeug import Request, Response

from executions import lifecycle
from executions.control import dispatch
from executions.ingest import selectors as api_selectors
from executions.models import Batch, Execution, Source, Status

from ..factories import ApiKeyFactory, ExecutionFactory
from .conftest import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    """POST JSON with the key, letting the committed webhooks go out."""

    def call(path, body=None):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(
                "/api/v1" + path,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
            )

    return call


# --- execute --------------------------------------------------------------------------


def test_execute_is_async_by_default(post, hooked_version, receiver):
    response = post(
        "/agents/invoice-extractor:v1/execute",
        {"inputs": {"file": "a.pdf"}, "priority": "high", "metadata": {"k": "v"}},
    )
    assert response.status_code == 202
    body = response.json()
    execution = Execution.objects.get()
    assert body["execution_id"] == str(execution.pk)
    assert body["status"] == "queued" and body["priority"] == "high"
    assert body["agent"] == "invoice-extractor:v1" and body["input"] == {"file": "a.pdf"}
    assert body["wait"] is None
    assert execution.source == Source.API and execution.metadata == {"k": "v"}
    assert execution.request["path"] == "/api/v1/agents/invoice-extractor:v1/execute"
    assert execution.request["headers"]["Authorization"] == "[redacted]"
    [request] = receiver.requests
    assert dispatch.verify(request.body, SECRET, request.headers["X-Runboard-Signature"])
    assert request.json["execution"]["id"] == body["execution_id"]


def test_bad_inputs_answer_422_naming_the_field(post, hooked_version):
    response = post("/agents/invoice-extractor:v1/execute", {"inputs": {"pages": "x"}})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "inputs", "message": "'file' is a required property", "in": "body"},
        {"field": "inputs.pages", "message": "'x' is not of type 'integer'", "in": "body"},
    ]
    response = post("/agents/invoice-extractor:v1/execute", {"inputs": {}, "priority": "asap"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "priority"
    assert not Execution.objects.exists()


def test_an_unknown_agent_or_version_is_a_404(post, hooked_version):
    response = post("/agents/invoice-extractor:v7/execute", {"inputs": {"file": "a"}})
    assert response.status_code == 404
    assert "invoice-extractor has no version 'v7'" in response.json()["detail"]
    assert post("/agents/nobody:v1/execute", {"inputs": {}}).status_code == 404


def test_execute_needs_a_key(client, hooked_version):
    response = client.post(
        "/api/v1/agents/invoice-extractor:v1/execute", "{}", content_type="application/json"
    )
    assert response.status_code == 401


def test_another_workspaces_agent_is_a_404(client, other_workspace, hooked_version):
    _, raw = ApiKeyFactory.create_with_raw(workspace=other_workspace)
    response = client.post(
        "/api/v1/agents/invoice-extractor:v1/execute",
        json.dumps({"inputs": {"file": "a"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 404


def test_execute_by_name_or_inline_config(post, hooked_version, receiver):
    by_name = post("/execute", {"name": "invoice-extractor:v1", "inputs": {"file": "a"}})
    assert by_name.status_code == 202 and by_name.json()["agent"] == "invoice-extractor:v1"

    inline = post(
        "/execute",
        {
            "config": {"prompt": "Extract the store name, date and total."},
            "inputs": {"file": "receipt.jpg"},
            "webhook_url": receiver.url,
            "webhook_secret": "inline-secret",
        },
    )
    assert inline.status_code == 202
    assert inline.json()["agent_name"] == "inline"
    assert inline.json()["version"].startswith("inline-")
    request = receiver.requests[-1]
    assert request.json["execution"]["config"] == {
        "prompt": "Extract the store name, date and total."
    }
    assert dispatch.verify(request.body, "inline-secret", request.headers["X-Runboard-Signature"])

    both = post("/execute", {"name": "invoice-extractor:v1", "config": {"a": 1}})
    assert both.status_code == 422
    assert "either `name`" in both.json()["detail"]
    assert post("/execute", {"inputs": {}}).status_code == 422


def test_a_retried_execute_with_the_same_key_returns_the_first(post, hooked_version):
    body = {"inputs": {"file": "a"}, "idempotency_key": "order-7"}
    first = post("/agents/invoice-extractor:v1/execute", body).json()
    again = post("/agents/invoice-extractor:v1/execute", body).json()
    assert first["execution_id"] == again["execution_id"]
    assert Execution.objects.count() == 1


def test_execute_can_join_an_existing_batch(post, hooked_version, workspace, other_workspace):
    batch = Batch.objects.create(workspace=workspace, name="Morning")
    response = post(
        "/agents/invoice-extractor:v1/execute", {"inputs": {"file": "a"}, "batch": str(batch.pk)}
    )
    assert response.json()["batch_id"] == str(batch.pk)
    foreign = Batch.objects.create(workspace=other_workspace)
    response = post(
        "/agents/invoice-extractor:v1/execute", {"inputs": {"file": "a"}, "batch": str(foreign.pk)}
    )
    assert response.status_code == 404


# --- sync -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sync_execute_waits_for_the_result(post, hooked_version, httpserver, settings, monkeypatch):
    settings.RUNBOARD_API_POLL_SECONDS = 0.01
    FINISHES_AT_POLL = 3

    def runtime(request: Request) -> Response:
        # A runtime that takes the run and answers at once; it finishes later.
        execution = Execution.objects.get(pk=json.loads(request.get_data())["execution"]["id"])
        lifecycle.transition(execution, Status.RUNNING)
        return Response("{}", status=202)

    httpserver.expect_request("/slow", method="POST").respond_with_handler(runtime)
    hooked_version.webhook_url = httpserver.url_for("/slow")
    hooked_version.save()

    polls = []
    real_status = api_selectors.execution_status

    def status_then_finish(*, workspace, pk):
        # The runtime reports its result while the API waits, between two polls.
        polls.append(real_status(workspace=workspace, pk=pk))
        if len(polls) == FINISHES_AT_POLL:
            execution = Execution.objects.get(pk=pk)
            Execution.objects.filter(pk=pk).update(output={"total": 42})
            lifecycle.transition(execution, Status.COMPLETED)
        return polls[-1]

    monkeypatch.setattr(api_selectors, "execution_status", status_then_finish)
    response = post(
        "/agents/invoice-extractor:v1/execute",
        {"inputs": {"file": "a"}, "sync": True, "timeout": 30},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and body["output"] == {"total": 42}
    assert body["wait"]["ended"] is True and body["wait"]["timed_out"] is False
    # It waited: three polls saw the run unfinished, the fourth saw it completed.
    assert polls == [Status.RUNNING] * FINISHES_AT_POLL + [Status.COMPLETED]


def test_sync_execute_answers_the_current_status_when_it_does_not_end(post, hooked_version):
    response = post(
        "/agents/invoice-extractor:v1/execute",
        {"inputs": {"file": "a"}, "sync": True, "timeout": 0.2},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["wait"]["ended"] is False and body["wait"]["timed_out"] is True


# --- batches --------------------------------------------------------------------------


def test_batch_execute(post, hooked_version, receiver):
    response = post(
        "/agents/invoice-extractor:v1/batches",
        {"inputs": [{"file": "1.pdf"}, {"file": "2.pdf"}], "name": "May invoices"},
    )
    assert response.status_code == 201
    body = response.json()
    batch = Batch.objects.get()
    assert body["batch_id"] == str(batch.pk) and body["count"] == 2
    assert body["name"] == "May invoices" and body["url"].endswith(batch.get_absolute_url())
    assert sorted(receiver.executions()) == sorted(body["execution_ids"])


def test_a_bad_batch_item_starts_nothing(post, hooked_version):
    response = post("/agents/invoice-extractor:v1/batches", {"inputs": [{"file": "1"}, {}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "inputs[1]"
    assert not Execution.objects.exists() and not Batch.objects.exists()


# --- rerun, cancel, approve, reject ---------------------------------------------------


def test_rerun(post, hooked_version, receiver):
    original = ExecutionFactory(agent_version=hooked_version, status=Status.FAILED)
    response = post(f"/executions/{original.pk}/rerun")
    assert response.status_code == 201
    body = response.json()
    assert body["rerun_of"] == str(original.pk) and body["source"] == "rerun"
    assert receiver.executions() == [body["execution_id"]]


def test_rerun_of_a_running_execution_is_a_409(post, hooked_version):
    running = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    response = post(f"/executions/{running.pk}/rerun")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Execution {running.pk} is running; only a finished execution can be "
        "rerun. Cancel it first, or wait for it to end.",
        "current_status": "running",
        "requested_status": "rerun",
    }
    assert Execution.objects.count() == 1


def test_cancel_tells_the_runtime_and_twice_is_harmless(post, hooked_version, receiver):
    running = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    response = post(f"/executions/{running.pk}/cancel", {"reason": "Duplicate order"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["failure_reason"] == "Duplicate order"
    first = Execution.objects.get(pk=running.pk)
    again = post(f"/executions/{running.pk}/cancel", {"reason": "Another reason"})
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    # The second cancel changes nothing and tells the runtime nothing.
    second = Execution.objects.get(pk=running.pk)
    assert (second.failure_reason, second.completed_at, second.updated_at) == (
        "Duplicate order",
        first.completed_at,
        first.updated_at,
    )
    assert [r.event for r in receiver.requests] == ["cancel"]


def test_cancel_of_a_finished_execution_is_a_409(post, hooked_version):
    done = ExecutionFactory(agent_version=hooked_version, status=Status.COMPLETED)
    response = post(f"/executions/{done.pk}/cancel")
    assert response.status_code == 409
    assert "is completed, which is final" in response.json()["detail"]
    assert Execution.objects.get(pk=done.pk).status == Status.COMPLETED


def test_approve_and_reject(post, hooked_version, receiver):
    first = ExecutionFactory(agent_version=hooked_version, status=Status.AWAITING_APPROVAL)
    second = ExecutionFactory(agent_version=hooked_version, status=Status.AWAITING_APPROVAL)
    approved = post(f"/executions/{first.pk}/approve", {"note": "ok"}).json()
    assert approved["status"] == "running" and approved["approval_note"] == "ok"
    assert approved["decided_at"] is not None and approved["decided_by"] is None
    rejected = post(f"/executions/{second.pk}/reject", {"note": "no"}).json()
    assert (
        rejected["status"] == "rejected" and rejected["failure_reason"] == "Rejected by the API: no"
    )
    assert [r.event for r in receiver.requests] == ["approved", "rejected"]


def test_approving_a_completed_execution_is_a_409(post, hooked_version):
    done = ExecutionFactory(agent_version=hooked_version, status=Status.COMPLETED)
    response = post(f"/executions/{done.pk}/approve")
    assert response.status_code == 409
    assert response.json()["requested_status"] == "approve"
    assert "only an execution awaiting approval can be approved" in response.json()["detail"]


def test_another_workspaces_execution_is_a_404(post, other_workspace):
    foreign = ExecutionFactory(status=Status.RUNNING)
    for action in ["rerun", "cancel", "approve", "reject"]:
        assert post(f"/executions/{foreign.pk}/{action}").status_code == 404
    assert Execution.objects.get(pk=foreign.pk).status == Status.RUNNING


def test_the_openapi_document_lists_the_control_endpoints(api):
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/api/v1/agents/{name}:{version}/execute",
        "/api/v1/execute",
        "/api/v1/agents/{name}:{version}/batches",
        "/api/v1/executions/{execution_id}/rerun",
        "/api/v1/executions/{execution_id}/cancel",
        "/api/v1/executions/{execution_id}/approve",
        "/api/v1/executions/{execution_id}/reject",
    } <= set(paths)


def test_a_runtime_pauses_for_approval_and_a_reviewer_sees_it(post, hooked_version, bob):
    running = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    ask = {"action": "issue_refund", "amount": 129.9}
    response = post(f"/executions/{running.pk}/approval-request", {"request": ask})
    assert response.status_code == 200
    assert response.json()["status"] == "awaiting_approval"
    assert response.json()["approval_request"] == ask
    # Bob, a reviewer, sees what is asked and can approve or reject it.
    reviewer = Client()
    reviewer.force_login(bob)
    page = reviewer.get(f"/executions/{running.pk}/?tab=request").content.decode()
    assert "Approval requested" in page and "issue_refund" in page and "129.9" in page
    assert f'action="/executions/{running.pk}/approve/"' in page
    assert f'formaction="/executions/{running.pk}/reject/"' in page
    # Asked again (a retry): harmless.
    assert post(f"/executions/{running.pk}/approval-request", {"request": ask}).status_code == 200
    done = ExecutionFactory(agent_version=hooked_version, status=Status.COMPLETED)
    response = post(f"/executions/{done.pk}/approval-request", {"request": ask})
    assert response.status_code == 409
    response = post(f"/executions/{running.pk}/approval-request", {"request": {}})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "request"
