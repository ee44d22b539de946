"""Automation rules: triggers from the lifecycle and from thumbs-down notes, saved
view matching, deterministic sampling, at most once per rule and run, actions (queue,
tag, a signed webhook to a real HTTP server), the log and the backfill."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command
from django.test import Client

from agents.models import Membership
from executions import lifecycle
from executions.automation.models import Rule, RuleRun, Trigger
from executions.automation.services import rule_apply, rule_backfill, sampled
from executions.models import SavedView, Status
from executions.tags.models import ExecutionTag
from feedback.models import ExecutionNote
from feedback.queues.models import QueueItem
from feedback.queues.services import queue_create
from tests.factories import ApiKeyFactory, ExecutionFactory

PORT = 55201


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what waits for the commit (the tests' transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def queue(alice, workspace):
    return queue_create(membership=Membership.objects.get(user=alice), name="Auto")


@pytest.fixture
def rule(workspace, queue):
    return Rule.objects.create(
        workspace=workspace,
        name="Review failures",
        trigger=Trigger.FAILED,
        queue=queue,
        tags=["auto"],
    )


def test_sampling_is_deterministic_and_even():
    ids = [f"run-{i}" for i in range(4000)]
    picked = [i for i in ids if sampled(7, i, 25)]
    assert picked == [i for i in ids if sampled(7, i, 25)]
    assert 900 <= len(picked) <= 1100
    assert not any(sampled(7, i, 0) for i in ids)
    assert all(sampled(7, i, 100) for i in ids)
    # Another rule samples other runs.
    assert picked != [i for i in ids if sampled(8, i, 25)]


def test_a_run_that_fails_is_queued_and_tagged_once(committed, rule, agent_version, queue):
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, completed_at=None)
    with committed():
        lifecycle.transition(run, Status.FAILED, error="boom")
    (log,) = RuleRun.objects.filter(rule=rule)
    assert log.outcome == "applied"
    assert QueueItem.objects.filter(queue=queue, execution=run).exists()
    assert list(ExecutionTag.objects.filter(execution=run).values_list("name", flat=True)) == [
        "auto"
    ]
    # Again (a task retried, a backfill): nothing more happens.
    assert rule_apply(rule, run) is None
    assert RuleRun.objects.filter(rule=rule).count() == 1


def test_completed_runs_do_not_fire_a_failed_rule(committed, rule, agent_version):
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, completed_at=None)
    with committed():
        lifecycle.transition(run, Status.COMPLETED)
    assert not RuleRun.objects.exists()


def test_a_saved_view_that_does_not_match_is_logged(
    committed, rule, agent_version, alice, workspace
):
    rule.saved_view = SavedView.objects.create(
        workspace=workspace, owner=alice, name="Completed", query="status=completed"
    )
    rule.save()
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, completed_at=None)
    with committed():
        lifecycle.transition(run, Status.TIMED_OUT)
    assert RuleRun.objects.get(rule=rule).outcome == "not_matched"
    assert not QueueItem.objects.exists()


def test_a_thumbs_down_note_fires_its_rule(committed, workspace, agent_version, queue):
    rule = Rule.objects.create(
        workspace=workspace, name="Down", trigger=Trigger.THUMBS_DOWN, queue=queue
    )
    run = ExecutionFactory(agent_version=agent_version)
    with committed():
        ExecutionNote.objects.create(workspace=workspace, execution=run, rating="up")
    assert not RuleRun.objects.exists()
    with committed():
        ExecutionNote.objects.create(workspace=workspace, execution=run, rating="down")
    assert RuleRun.objects.get(rule=rule).outcome == "applied"


def test_rules_of_other_workspaces_never_fire(committed, rule, other_workspace):
    run = ExecutionFactory(
        agent_version__agent__workspace=other_workspace, status=Status.RUNNING, completed_at=None
    )
    with committed():
        lifecycle.transition(run, Status.FAILED)
    assert not RuleRun.objects.exists()


def test_backfill_applies_to_past_runs_once(rule, agent_version, capsys):
    old = ExecutionFactory.create_batch(3, agent_version=agent_version, status=Status.FAILED)
    ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    assert rule_backfill(rule) == {"applied": 3}
    assert rule_backfill(rule) == {}
    assert set(RuleRun.objects.values_list("execution_id", flat=True)) == {r.pk for r in old}
    assert RuleRun.objects.filter(backfill=True).count() == 3
    call_command("backfill_rule", str(rule.pk))
    assert "nothing to do" in capsys.readouterr().out


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server(settings):
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1"]
    Hook.received = []
    server = HTTPServer(("127.0.0.1", PORT), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Hook.received
    server.shutdown()
    server.server_close()


def test_the_webhook_action_is_signed_and_sent_once(
    committed, workspace, agent_version, hook_server
):
    rule = Rule.objects.create(
        workspace=workspace,
        name="Hook",
        trigger=Trigger.FINISHED,
        webhook_url=f"http://127.0.0.1:{PORT}/hook",
        webhook_secret="s3cret",
    )
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, completed_at=None)
    with committed():
        lifecycle.transition(run, Status.COMPLETED)
    assert rule_apply(rule, run) is None
    ((headers, body),) = hook_server
    payload = json.loads(body)
    assert payload["execution"]["id"] == str(run.pk) and payload["rule"]["name"] == "Hook"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert expected in headers["X-Runboard-Signature"]
    assert RuleRun.objects.get(rule=rule).detail["webhook"]["status"] == 204


def test_a_saved_view_whose_filters_no_longer_validate_matches_nothing(
    committed, rule, agent_version, alice, workspace
):
    rule.saved_view = SavedView.objects.create(
        workspace=workspace, owner=alice, name="Gone", query="agent=renamed-away"
    )
    rule.save()
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, completed_at=None)
    with committed():
        lifecycle.transition(run, Status.FAILED)
    log = RuleRun.objects.get(rule=rule)
    assert log.outcome == "not_matched" and "agent" in log.detail["filter_errors"]


def test_a_trace_that_arrives_whole_fires_finished_rules(committed, workspace):
    """An OTLP trace whose root span has ended is created completed, not moved there:
    the door announces it all the same."""
    from tests.executions.test_otlp import ids, request, send, span

    rule = Rule.objects.create(
        workspace=workspace, name="Traces", trigger=Trigger.FINISHED, tags=["otlp"]
    )
    _key, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    trace, root = ids()
    with committed():
        response = send(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), request(span(trace, root)))
    assert response.status_code == 200
    (log,) = RuleRun.objects.filter(rule=rule)
    assert log.execution.status == Status.COMPLETED and log.outcome == "applied"
    assert ExecutionTag.objects.get(execution=log.execution).name == "otlp"


def test_the_admin_backfill_action_runs_the_task(admin_client, rule, agent_version, committed):
    failed = ExecutionFactory(agent_version=agent_version, status=Status.FAILED)
    with committed():
        response = admin_client.post(
            "/admin/automation/rule/",
            {"action": "backfill", "_selected_action": [rule.pk]},
        )
    assert response.status_code == 302
    assert RuleRun.objects.get(rule=rule).execution_id == failed.pk


def test_rules_api(
    committed, workspace, other_workspace, alice, bob, charlie, queue, agent_version
):
    def api(user, ws):
        _key, raw = ApiKeyFactory.create_with_raw(workspace=ws, created_by=user)
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    admin, reviewer = api(alice, workspace), api(bob, workspace)
    body = {"name": "Failures", "trigger": "failed", "queue_id": queue.pk, "sample_percent": 50}
    assert reviewer.post("/api/v1/rules", body, content_type="application/json").status_code == 403
    created = admin.post("/api/v1/rules", body, content_type="application/json")
    assert created.status_code == 201, created.content
    rid = created.json()["id"]
    bad = admin.post(
        "/api/v1/rules",
        {"name": "Bad", "trigger": "failed", "queue_id": 999, "tags": ["NO NO"]},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"queue_id", "tags"}
    none = admin.post(
        "/api/v1/rules", {"name": "Idle", "trigger": "failed"}, content_type="application/json"
    )
    assert none.json()["errors"][0]["field"] == "actions"
    ExecutionFactory.create_batch(4, agent_version=agent_version, status=Status.FAILED)
    with committed():
        assert admin.post(f"/api/v1/rules/{rid}/backfill").status_code == 202
    log = admin.get(f"/api/v1/rules/{rid}/log").json()
    assert len(log) == 4 and {e["outcome"] for e in log} <= {"applied", "not_sampled"}
    assert api(charlie, other_workspace).get(f"/api/v1/rules/{rid}/log").status_code == 404
