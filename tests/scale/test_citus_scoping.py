"""The Citus plan stays true (docs/scaling.md, step 5): every SQL statement the dashboard
and ingestion run filters each distributed table by `workspace_id`.

A walk through the pages (table, detail, overview, alerts, queues, exports, agents,
feedback) and the doors (JSON API, OTLP, control plane) records every statement the
requests send (`connection.execute_wrapper`), and each is parsed (`sql_scope.py`): a
distributed table read or written without a workspace filter fails the test, naming
the request and the statement. Where a table cannot be filtered yet the plan says why
(`EXCEPTIONS`, documented in docs/scaling.md); a listed exception that no longer
happens fails too, so the list stays true.

Runs on both databases (the statements are Django's either way); the SQL of the
PostgreSQL-only paths (triggers' own statements run inside the database and are not
seen here: they write by NEW.workspace_id).
"""

import json
import secrets
from contextlib import contextmanager

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse
from werkzeug import Response

from agents.models import Role
from executions import counters

from ..factories import (
    AgentVersionFactory,
    ApiKeyFactory,
    MembershipFactory,
    UserFactory,
)
from .sql_scope import unscoped_tables

# transaction=True: wait and stream hand their connection back (executions/connections.py).
pytestmark = pytest.mark.django_db(transaction=True)

# The plan (docs/scaling.md, step 5). Distributed by workspace_id: every table that
# grows with runs. Reference tables (replicated to every node, joined anywhere):
# workspaces, agents and their versions, model prices, and the small per-workspace
# configuration a request looks up before it knows its workspace (members, API keys).
# Coordinator-local: Django's own tables and the task queue.
DISTRIBUTED = {
    "executions_execution",
    "executions_step",
    "executions_artifact",
    "executions_batch",
    "executions_executionpin",
    "executions_executioncounter",
    "executions_executionsearch",
    "executions_pendingspanevents",
    "executions_webhookdelivery",
    "executions_runrollup",
    "executions_durationrollup",
    "executions_statushour",
    "executions_agenthour",
    "executions_durationhour",
    "executions_errorgrouphour",
    "executions_stephour",
    "executions_stepdurationhour",
    "executions_runrollupday",
    "executions_durationrollupday",
    "executions_statusday",
    "executions_agentday",
    "executions_durationday",
    "executions_stepday",
    "executions_stepdurationday",
    "executions_steprunhour",
    "executions_steprundurationhour",
    "executions_steprunday",
    "executions_steprundurationday",
    "feedback_fieldcorrection",
    "feedback_executionnote",
    "queues_queueitem",
    "queues_review",
    "tags_executiontag",
    "automation_rulerun",
}
REFERENCE = {
    "agents_workspace",
    "agents_agent",
    "agents_agentversion",
    "agents_modelprice",
    "agents_membership",
    "agents_apikey",
    "agents_schedule",
    "executions_savedview",
    "executions_alertrule",
    "executions_alertevent",
    "executions_notification",
    "queues_queue",
    "queues_queue_assignees",
    "automation_rule",
    "auth_user",
    "auth_user_groups",
    "auth_user_user_permissions",
    "auth_group_permissions",
    "auth_group",
    "auth_permission",
    "django_content_type",
}
LOCAL = {"django_session", "django_admin_log", "django_tasks_database_dbtaskresult"}

# Not yet true (docs/scaling.md, step 5, "What the capture found"): for each distributed
# table, why some statements do not filter it by workspace, and the requests that send
# them today. A statement from any other request fails the test, and so does a request
# listed here that no longer sends one (then shorten the list and the docs).
_RUN_BY_ID = [
    "api: approval request",
    "api: approve",
    "api: cancel",
    "api: execute",
    "api: feedback",
    "api: get feedback",
    "api: get run",
    "api: get tags",
    "api: list steps",
    "api: rerun",
    "api: stream (ended run)",
    "api: tags",
    "api: wait",
    "detail",
    "detail: htmx",
    "detail: output tab",
    "detail: output.json",
    "detail: request.json",
    "detail: step",
    "feedback: diff",
    "feedback: form",
    "feedback: note",
    "feedback: notes",
    "table: cancel",
    "table: rerun",
]
EXCEPTIONS: dict[str, tuple[str, set[str]]] = {
    "executions_step": (
        "no workspace_id column: steps are read and written by their run's id",
        {
            "api: append steps",
            "api: cancel",
            "api: finish run",
            "api: list steps",
            "api: update step",
            "detail",
            "detail: htmx",
            "detail: output tab",
            "detail: step",
            "otlp: traces",
        },
    ),
    "executions_execution": (
        "a run read in the workspace is then updated, or its rerun original joined "
        "(select_related), by primary key alone; reruns and approvals read their run by id",
        {
            *_RUN_BY_ID,
            "agent",
            "api: append steps",
            "api: batch",
            "api: create run",
            "api: finish run",
            "api: update step",
            "reviews: queue",
        },
    ),
    "executions_batch": ("joined to a run by batch_id (select_related)", set(_RUN_BY_ID)),
    "executions_artifact": (
        "the detail page lists a run's artifacts by execution_id or step_id",
        {"detail", "detail: htmx", "detail: output tab", "detail: step"},
    ),
    "executions_webhookdelivery": (
        "no workspace_id column: deliveries are written and read by their run's id",
        {"api: batch", "api: cancel", "api: execute", "api: rerun", "table: rerun"},
    ),
    "queues_queueitem": (
        "a queue's items are read by queue_id (the queue is a reference table)",
        {
            "api: queue items",
            "api: queues",
            "reviews",
            "reviews: mine",
            "reviews: queue",
            "reviews: start",
        },
    ),
    "queues_review": (
        "reviews are read by item_id and reviewer",
        {"api: queues", "reviews", "reviews: mine", "reviews: queue", "reviews: start"},
    ),
}


def test_every_table_is_placed_in_the_plan():
    """A new model must be placed (distributed, reference or local) before it is used."""
    tables = {model._meta.db_table for model in apps.get_models()}
    tables |= {
        f.remote_field.through._meta.db_table
        for model in apps.get_models()
        for f in model._meta.many_to_many
    }
    placed = DISTRIBUTED | REFERENCE | LOCAL
    assert not tables - placed, f"not in the Citus plan: {sorted(tables - placed)}"


class Recorder:
    """Every statement sent while a request is served, with the request it served."""

    def __init__(self):
        self.label = None
        self.statements: list[tuple[str, str]] = []

    def __call__(self, execute, sql, params, many, context):
        if self.label:
            self.statements.append((self.label, sql))
        return execute(sql, params, many, context)

    @contextmanager
    def request(self, label):
        self.label = label
        try:
            yield
        finally:
            self.label = None


@pytest.fixture
def receiver(httpserver, settings):
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1", "::1"]
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: Response(json.dumps({"ok": True}), status=200)
    )
    return httpserver.url_for("/hook")


def walk(recorder, workspace, receiver):
    """Serves the pages and doors a workspace uses, recording each request's SQL."""
    admin = UserFactory(username="walker")
    MembershipFactory(user=admin, workspace=workspace, role=Role.ADMIN)
    version = AgentVersionFactory(
        agent__workspace=workspace,
        agent__name="invoice-extractor",
        webhook_url=receiver,
        webhook_secret="whsec-walk",
    )
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace, created_by=admin)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    web = Client()
    web.force_login(admin)

    def call(label, method, url, expect=(200, 201, 202, 204, 302), **kwargs):
        with recorder.request(label):
            response = getattr(method.__self__, method.__name__)(url, **kwargs)
        assert response.status_code in expect, (label, response.status_code, response.content[:300])
        if getattr(response, "streaming", False):
            response.close()
        return response

    # --- ingestion: the JSON API -------------------------------------------------------
    created = call(
        "api: create run",
        api.post,
        "/api/v1/executions",
        data={"agent": "invoice-extractor:v1", "input": {"file": "a.pdf"}, "status": "running"},
        content_type="application/json",
    ).json()
    run = created["execution_id"]
    steps = [
        {
            "span_id": f"s{n}",
            "sequence": n,
            "kind": "model_call",
            "name": f"step {n}",
            "model": "gpt-4o",
            "prompt_tokens": 10,
            "completion_tokens": 5,
        }
        for n in range(3)
    ]
    call(
        "api: append steps",
        api.post,
        f"/api/v1/executions/{run}/steps",
        data={"steps": steps},
        content_type="application/json",
    )
    call(
        "api: update step",
        api.post,
        f"/api/v1/executions/{run}/steps",
        data={"steps": [{"span_id": "s1", "name": "step 1 again"}]},
        content_type="application/json",
    )
    call("api: list steps", api.get, f"/api/v1/executions/{run}/steps?limit=2")
    call(
        "api: finish run",
        api.patch,
        f"/api/v1/executions/{run}",
        data={"status": "completed", "output": {"total": 12, "store": "Acme"}, "summary": "ok"},
        content_type="application/json",
    )
    call("api: get run", api.get, f"/api/v1/executions/{run}")
    call("api: list runs", api.get, "/api/v1/executions?limit=5&status=completed")
    call("api: list by cursor", api.get, "/api/v1/executions?limit=1")
    call("api: wait", api.get, f"/api/v1/executions/{run}/wait?timeout=0.5")
    call("api: stream (ended run)", api.get, f"/api/v1/executions/{run}/stream")
    call(
        "api: feedback",
        api.post,
        f"/api/v1/executions/{run}/feedback",
        data={
            "corrections": [{"path": "/total", "value": 13}],
            "note": {"rating": "up", "text": "fine"},
        },
        content_type="application/json",
    )
    call("api: get feedback", api.get, f"/api/v1/executions/{run}/feedback")
    call(
        "api: tags",
        api.post,
        f"/api/v1/executions/{run}/tags",
        data={"tags": ["vip"]},
        content_type="application/json",
    )
    call("api: get tags", api.get, f"/api/v1/executions/{run}/tags")
    call(
        "api: upload file",
        api.post,
        "/api/v1/files",
        data={"file": _upload("notes.txt", b"hello"), "execution_id": run},
    )
    artifact = call(
        "api: upload artifact",
        api.post,
        f"/api/v1/executions/{run}/artifacts",
        data={"file": _upload("out.txt", b"result")},
    ).json()
    call("api: download artifact", api.get, f"/api/v1/executions/{run}/artifacts/{artifact['id']}")

    # --- ingestion: OTLP ---------------------------------------------------------------
    call(
        "otlp: traces",
        api.post,
        "/v1/traces",
        data=_otlp_body(),
        content_type="application/x-protobuf",
    )

    # --- control plane -------------------------------------------------------------------
    executed = call(
        "api: execute",
        api.post,
        f"/api/v1/agents/{version.agent.name}:{version.version}/execute",
        data={"inputs": {"file": "b.pdf"}},
        content_type="application/json",
    ).json()
    queued = executed["execution_id"] if "execution_id" in executed else executed["id"]
    call(
        "api: approval request",
        api.post,
        f"/api/v1/executions/{queued}/approval-request",
        data={"request": {"action": "refund"}},
        content_type="application/json",
        expect=(200, 201, 409),
    )
    call(
        "api: approve",
        api.post,
        f"/api/v1/executions/{queued}/approve",
        data={},
        content_type="application/json",
        expect=(200, 409),
    )
    call(
        "api: cancel",
        api.post,
        f"/api/v1/executions/{queued}/cancel",
        data={},
        content_type="application/json",
        expect=(200, 409),
    )
    call(
        "api: rerun",
        api.post,
        f"/api/v1/executions/{run}/rerun",
        data={},
        content_type="application/json",
    )
    call(
        "api: batch",
        api.post,
        f"/api/v1/agents/{version.agent.name}:{version.version}/batches",
        data={"inputs": [{"file": "c.pdf"}, {"file": "d.pdf"}]},
        content_type="application/json",
    )

    # --- the dashboard -------------------------------------------------------------------
    counters.rebuild()
    detail = reverse("executions:detail", args=[run])
    for label, url in [
        ("table", "/executions/"),
        ("table: status + agent", f"/executions/?status=completed&agent={version.agent.name}"),
        ("table: search", "/executions/?q=acme"),
        ("table: metadata", "/executions/?metadata=env%3Dprod"),
        ("table: sort by cost", "/executions/?sort=-cost"),
        ("table: page 2", "/executions/?page=2"),
        ("table: live region", "/executions/live/"),
        ("table: approvals", "/executions/approvals/"),
        ("detail", detail),
        ("detail: output tab", f"{detail}?tab=output"),
        ("detail: step", reverse("executions:step", args=[run, 1])),
        ("detail: output.json", reverse("executions:output_json", args=[run])),
        ("detail: request.json", reverse("executions:request_json", args=[run])),
        ("feedback: form", reverse("feedback:form", args=[run])),
        ("feedback: diff", reverse("feedback:diff", args=[run])),
        ("feedback: notes", reverse("feedback:notes", args=[run])),
        ("export: csv", "/executions/export.csv"),
        ("export: json", "/executions/export.json"),
        ("overview", "/overview/"),
        ("overview: 24 h", "/overview/?range=24h"),
        ("overview: csv", "/overview/export.csv?chart=agents"),
        ("overview: csv errors", "/overview/export.csv?chart=error-groups"),
        ("overview: csv models", "/overview/export.csv?chart=models"),
        ("agents", "/agents/"),
        ("agent", f"/agents/{version.agent.slug}/"),
        ("alerts", "/alerts/"),
        ("alerts: new", "/alerts/new/"),
        ("reviews", "/reviews/"),
        ("api keys", "/workspace/api-keys/"),
    ]:
        call(label, web.get, url)
    call("detail: htmx", web.get, detail, HTTP_HX_REQUEST="true")
    call("table: htmx", web.get, "/executions/?status=completed", HTTP_HX_REQUEST="true")
    call(
        "table: save view",
        web.post,
        "/executions/views/",
        data={"name": "done", "query": "status=completed"},
    )
    call(
        "feedback: note",
        web.post,
        reverse("feedback:notes", args=[run]),
        data={"rating": "down", "text": "wrong total"},
    )
    call(
        "table: cancel",
        web.post,
        reverse("executions:cancel", args=[queued]),
        expect=(200, 302, 409),
    )
    call("table: rerun", web.post, reverse("executions:rerun", args=[run]))
    call(
        "alerts: create",
        web.post,
        "/alerts/new/",
        data={
            "name": "Errors up",
            "metric": "error_rate",
            "window_minutes": "15",
            "condition": "above",
            "threshold": "10",
            "min_runs": "20",
            "sustain": "3",
            "enabled": "on",
            "emails": "ops@example.com",
        },
    )
    queue = call(
        "api: new queue",
        api.post,
        "/api/v1/queues",
        data={"name": "check totals"},
        content_type="application/json",
    ).json()
    call(
        "api: queue items",
        api.post,
        f"/api/v1/queues/{queue['id']}/items",
        data={"execution_ids": [run]},
        content_type="application/json",
    )
    call("api: queues", api.get, "/api/v1/queues")
    call("reviews: queue", web.get, reverse("queues:detail", args=[queue["id"]]))
    call("reviews: start", web.post, reverse("queues:start", args=[queue["id"]]))
    call("reviews: mine", web.get, reverse("queues:mine"))
    return run


def _upload(name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def _otlp_body():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    message = ExportTraceServiceRequest()
    resource = message.resource_spans.add()
    resource.resource.attributes.extend(
        [KeyValue(key="service.name", value=AnyValue(string_value="support-bot"))]
    )
    spans = resource.scope_spans.add().spans
    trace, root, child = secrets.token_bytes(16), secrets.token_bytes(8), secrets.token_bytes(8)
    t0 = 1_767_225_600_000_000_000
    root_span = spans.add(trace_id=trace, span_id=root, name="invoke_agent")
    root_span.start_time_unix_nano, root_span.end_time_unix_nano = t0, t0 + 900_000_000
    child_span = spans.add(trace_id=trace, span_id=child, parent_span_id=root, name="chat")
    child_span.start_time_unix_nano, child_span.end_time_unix_nano = t0, t0 + 400_000_000
    child_span.attributes.extend(
        [KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="claude-sonnet"))]
    )
    return message.SerializeToString()


def test_every_statement_filters_distributed_tables_by_workspace(workspace, receiver, monkeypatch):
    recorder = Recorder()
    if connection.vendor == "postgresql":
        # COPY goes to psycopg directly (executions/ingest/steps_insert.py), past Django's
        # execute wrappers: record it from psycopg's own cursor.
        import psycopg

        copy = psycopg.Cursor.copy

        def recorded_copy(cursor, statement, *args, **kwargs):
            if recorder.label:
                recorder.statements.append((recorder.label, str(statement)))
            return copy(cursor, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "copy", recorded_copy)
    with connection.execute_wrapper(recorder):
        walk(recorder, workspace, receiver)
    assert len(recorder.statements) > 200, "the walk recorded too little to prove anything"

    found: dict[tuple[str, str], list[str]] = {}
    for label, sql in recorder.statements:
        for table in unscoped_tables(sql, DISTRIBUTED):
            found.setdefault((table, label), []).append(sql)
    allowed = {(table, label) for table, (_, labels) in EXCEPTIONS.items() for label in labels}
    new = sorted(set(found) - allowed)
    assert not new, "statements that would leave one shard (not filtered by workspace_id):\n" + (
        "\n\n".join(f"[{label}] {table}: {found[table, label][0]}" for table, label in new)
    )
    gone = sorted(allowed - set(found))
    assert not gone, f"filtered now: remove from EXCEPTIONS and docs/scaling.md: {gone}"
