"""POST/GET/PATCH /api/v1/executions: shapes of seeds 002 and 004, idempotency, agents
created on first use, input schemas, the lifecycle through the API, list filters."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, AgentVersion
from executions import counters
from executions.models import Batch, Execution, Priority, Status
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db


def post(api, path, body, **extra):
    return api.post(path, body, content_type="application/json", **extra)


def patch(api, path, body):
    return api.patch(path, body, content_type="application/json")


class TestCreate:
    def test_it_answers_seed_002s_shape(self, api, workspace):
        response = post(
            api,
            "/api/v1/executions",
            {"agent": "invoice-extractor:v1", "inputs": {"file": "https://x/invoice.pdf"}},
        )
        assert response.status_code == 201
        body = response.json()
        execution = Execution.objects.get(pk=body["execution_id"])
        assert body["agent_id"] == execution.agent_id
        assert body["status"] == "pending"
        assert body["inputs"] == {"file": "https://x/invoice.pdf"}
        assert body["created_at"].startswith(str(execution.created_at.year))
        assert execution.workspace == workspace
        assert execution.input == {"file": "https://x/invoice.pdf"}
        assert counters.total(workspace=workspace, statuses=["pending"]) == 1

    def test_an_unknown_agent_and_version_are_created_on_first_use(self, api, workspace):
        post(api, "/api/v1/executions", {"agent": "image/blur-faces:v2", "input": {}})
        agent = Agent.objects.get(workspace=workspace, name="image/blur-faces")
        assert list(agent.versions.values_list("version", flat=True)) == ["v2"]
        # Second use finds them again.
        post(api, "/api/v1/executions", {"name": "image/blur-faces", "version": "v2"})
        assert Agent.objects.filter(workspace=workspace).count() == 1
        assert AgentVersion.objects.filter(agent=agent).count() == 1
        assert Execution.objects.filter(agent=agent, version_name="v2").count() == 2

    def test_a_name_without_version_uses_the_latest_version(self, api, workspace):
        old = AgentVersionFactory(agent__workspace=workspace, agent__name="triage", version="v1")
        newer = AgentVersionFactory(agent=old.agent, version="v2")
        newer.created_at = old.created_at + timedelta(days=1)
        newer.save()
        body = post(api, "/api/v1/executions", {"agent": "triage"}).json()
        assert body["agent_version_id"] == newer.pk
        assert body["agent"] == "triage:v2"

    def test_priority_batch_metadata_and_start_time_are_kept(self, api, workspace):
        batch_id = uuid.uuid4()
        started = "2026-01-02T03:04:05Z"
        body = post(
            api,
            "/api/v1/executions",
            {
                "agent": "a:v1",
                "priority": "high",
                "batch": str(batch_id),
                "batch_name": "January invoices",
                "metadata": {"customer": "acme"},
                "status": "processing",
                "started_at": started,
            },
        ).json()
        execution = Execution.objects.get(pk=body["execution_id"])
        assert execution.priority == Priority.HIGH
        assert execution.batch == Batch.objects.get(pk=batch_id, workspace=workspace)
        assert execution.batch.name == "January invoices"
        assert execution.metadata == {"customer": "acme"}
        assert execution.status == Status.RUNNING
        assert execution.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        # A second execution joins the same batch rather than making another.
        post(api, "/api/v1/executions", {"agent": "a:v1", "batch": str(batch_id)})
        assert Batch.objects.filter(workspace=workspace).count() == 1
        assert execution.batch.executions.count() == 2

    def test_a_run_reported_after_the_fact_walks_the_lifecycle(self, api, workspace):
        body = post(
            api,
            "/api/v1/executions",
            {
                "agent": "a:v1",
                "status": "completed",
                "output": {"total": 10},
                "started_at": "2026-01-01T00:00:00Z",
                "completed_at": "2026-01-01T00:00:45.200Z",
                "usage": {"input_tokens": 450, "output_tokens": 120},
                "cost": "0.0123",
                "credits": 2,
            },
        ).json()
        assert body["status"] == "completed"
        execution = Execution.objects.get(pk=body["execution_id"])
        assert execution.duration_ms == 45200
        assert (execution.prompt_tokens, execution.completion_tokens) == (450, 120)
        assert execution.total_tokens == 570
        assert execution.cost_usd == Decimal("0.012300")
        # Counted once, under its final status: pending and running were passed through.
        assert counters.total(workspace=workspace, statuses=["completed"]) == 1
        assert counters.total(workspace=workspace) == 1

    def test_the_request_is_kept_with_secrets_redacted(self, api, raw_key):
        body = post(
            api,
            "/api/v1/executions",
            {"agent": "a:v1", "input": {"question": "hi", "api_key": "sk-secret"}},
            HTTP_X_TRACE="abc",
        ).json()
        request = Execution.objects.get(pk=body["execution_id"]).request
        assert request["method"] == "POST"
        assert request["path"] == "/api/v1/executions"
        assert request["body"]["input"] == {"question": "hi", "api_key": "[redacted]"}
        assert request["headers"]["Authorization"] == "[redacted]"
        assert request["headers"]["X-Trace"] == "abc"
        assert raw_key not in str(request)
        assert "sk-secret" not in str(request)

    def test_input_is_validated_against_the_versions_schema(self, api, workspace):
        AgentVersionFactory(
            agent__workspace=workspace,
            agent__name="typed",
            version="v1",
            input_schema={
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string"},
                    "pages": {"type": "array", "items": {"type": "integer"}},
                },
            },
        )
        response = post(
            api, "/api/v1/executions", {"agent": "typed:v1", "input": {"pages": [1, "two"]}}
        )
        assert response.status_code == 422
        fields = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert fields["input"] == "'file' is a required property"
        assert fields["input.pages[1]"] == "'two' is not of type 'integer'"
        assert not Execution.objects.exists()
        ok = post(api, "/api/v1/executions", {"agent": "typed:v1", "input": {"file": "f.pdf"}})
        assert ok.status_code == 201


class TestIdempotency:
    def test_the_same_key_twice_creates_one_execution(self, api, workspace):
        first = post(api, "/api/v1/executions", {"agent": "a:v1", "idempotency_key": "k-1"})
        again = post(api, "/api/v1/executions", {"agent": "a:v1", "idempotency_key": "k-1"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["execution_id"] == again.json()["execution_id"]
        assert Execution.objects.count() == 1
        assert counters.total(workspace=workspace) == 1

    def test_the_idempotency_key_header_works_too(self, api):
        first = post(api, "/api/v1/executions", {"agent": "a:v1"}, HTTP_IDEMPOTENCY_KEY="h-1")
        again = post(api, "/api/v1/executions", {"agent": "a:v1"}, HTTP_IDEMPOTENCY_KEY="h-1")
        assert first.json()["execution_id"] == again.json()["execution_id"]
        assert Execution.objects.get().idempotency_key == "h-1"

    def test_keys_are_per_workspace(self, api, other_api):
        post(api, "/api/v1/executions", {"agent": "a:v1", "idempotency_key": "same"})
        post(other_api, "/api/v1/executions", {"agent": "a:v1", "idempotency_key": "same"})
        assert Execution.objects.count() == 2


class TestGet:
    def test_it_has_seed_004s_fields_and_seed_002s_processing_time(self, api, agent_version):
        execution = ExecutionFactory(
            agent_version=agent_version,
            status=Status.COMPLETED,
            prompt_tokens=450,
            completion_tokens=120,
            total_tokens=570,
            duration_ms=45200,
            trace_id="ab" * 16,
            session_id="chat-1",
            metadata={"channel": "web"},
            error="",
        )
        body = api.get(f"/api/v1/executions/{execution.pk}").json()
        assert body["id"] == body["execution_id"] == str(execution.pk)
        assert body["agent_id"] == agent_version.agent_id
        assert body["agent_version_id"] == agent_version.pk
        assert body["workspace_id"] == execution.workspace_id
        assert body["token_usage"] == {
            "prompt_tokens": 450,
            "completion_tokens": 120,
            "total_tokens": 570,
        }
        assert body["cost"] == pytest.approx(0.0123)
        assert body["duration_ms"] == 45200
        assert body["processing_time"] == "45.2s"
        assert body["trace_id"] == "ab" * 16
        assert body["session_id"] == "chat-1"
        assert body["input"] == execution.input
        assert body["output"] == body["response"] == execution.output
        assert body["metadata"] == {"channel": "web"}
        for key in ("started_at", "completed_at", "created_at", "error", "status"):
            assert key in body

    def test_it_costs_two_queries(self, api, agent_version, django_assert_num_queries):
        execution = ExecutionFactory(agent_version=agent_version)
        api.get(f"/api/v1/executions/{execution.pk}")  # the key's last_used_at is stamped
        with django_assert_num_queries(2):  # the key, the execution
            response = api.get(f"/api/v1/executions/{execution.pk}")
        assert response.status_code == 200


class TestList:
    @pytest.fixture
    def runs(self, workspace):
        old = datetime(2026, 1, 1, tzinfo=UTC)
        a = AgentVersionFactory(agent__workspace=workspace, agent__name="alpha")
        b = AgentVersionFactory(agent__workspace=workspace, agent__name="beta")
        made = [
            ExecutionFactory(agent_version=a, status=Status.COMPLETED, created_at=old),
            ExecutionFactory(agent_version=a, status=Status.FAILED, metadata={"env": "prod"}),
            ExecutionFactory(agent_version=b, status=Status.RUNNING, metadata={"env": "dev"}),
        ]
        counters.rebuild(workspace)
        return made

    def ids(self, response):
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["data"]}

    def test_filters(self, api, runs):
        done, failed, running = (str(e.pk) for e in runs)
        assert self.ids(api.get("/api/v1/executions?agent=alpha")) == {done, failed}
        assert self.ids(api.get("/api/v1/executions?status=failed&status=running")) == {
            failed,
            running,
        }
        assert self.ids(api.get("/api/v1/executions?status=processing")) == {running}
        assert self.ids(api.get("/api/v1/executions?status=completed,failed")) == {done, failed}
        assert self.ids(api.get("/api/v1/executions?metadata=env=prod")) == {failed}
        assert self.ids(api.get("/api/v1/executions?since=2026-02-01T00:00:00Z")) == {
            failed,
            running,
        }
        assert self.ids(api.get("/api/v1/executions?until=2026-02-01T00:00:00Z")) == {done}

    def test_pages_and_totals(self, api, runs):
        first = api.get("/api/v1/executions?limit=2").json()
        second = api.get("/api/v1/executions?limit=2&page=2").json()
        assert (len(first["data"]), first["has_more"], first["total"]) == (2, True, 3)
        assert (len(second["data"]), second["has_more"]) == (1, False)
        assert {r["id"] for r in first["data"] + second["data"]} == {str(e.pk) for e in runs}
        # Newest first.
        assert first["data"][0]["id"] != str(runs[0].pk)
        # A filter the counters cannot answer gives no total rather than a slow one.
        assert api.get("/api/v1/executions?metadata=env=prod").json()["total"] is None

    def test_bad_filters_name_the_field(self, api, runs):
        response = api.get("/api/v1/executions?status=sleeping&limit=500")
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert "limit" in fields
        response = api.get("/api/v1/executions?status=sleeping")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "status"
        assert "sleeping" in response.json()["detail"]
        response = api.get("/api/v1/executions?metadata=nokey")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "metadata"

    def test_the_list_query_count_does_not_grow(self, api, runs, django_assert_num_queries):
        api.get("/api/v1/executions")
        # key, page, counters total: the same for 3 rows as for 100.
        with django_assert_num_queries(3):
            assert len(api.get("/api/v1/executions").json()["data"]) == 3


class TestUpdate:
    @pytest.fixture
    def running(self, api):
        body = post(api, "/api/v1/executions", {"agent": "a:v1", "status": "running"}).json()
        return Execution.objects.get(pk=body["execution_id"])

    def test_completing_with_output_usage_cost_and_credits(self, api, running, workspace):
        response = patch(
            api,
            f"/api/v1/executions/{running.pk}",
            {
                "status": "completed",
                "output": {"answer": 42},
                "summary": "Answered.",
                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                "cost": 0.5,
                "credits": "1.25",
                "metadata": {"reviewed": False},
            },
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "completed"
        assert body["output"] == {"answer": 42}
        running.refresh_from_db()
        assert running.status == Status.COMPLETED
        assert running.completed_at is not None and running.duration_ms is not None
        assert running.summary == "Answered."
        assert running.total_tokens == 15
        assert running.cost_usd == Decimal("0.5")
        assert running.credits == Decimal("1.25")
        assert running.metadata == {"reviewed": False}
        assert counters.total(workspace=workspace, statuses=["completed"]) == 1
        assert counters.total(workspace=workspace, statuses=["running"]) == 0

    def test_the_seeds_spellings_are_accepted(self, api):
        body = post(api, "/api/v1/executions", {"agent": "a:v1", "status": "created"}).json()
        path = f"/api/v1/executions/{body['execution_id']}"
        assert body["status"] == "pending"
        assert patch(api, path, {"status": "processing"}).json()["status"] == "running"
        assert patch(api, path, {"status": "canceled"}).json()["status"] == "cancelled"

    def test_an_illegal_change_is_409_and_changes_nothing(self, api, running, workspace):
        path = f"/api/v1/executions/{running.pk}"
        patch(api, path, {"status": "failed", "error": "boom"})
        response = patch(api, path, {"status": "completed", "output": {"late": True}})
        assert response.status_code == 409
        body = response.json()
        assert body["current_status"] == "failed"
        assert body["requested_status"] == "completed"
        assert "final" in body["detail"]
        running.refresh_from_db()
        assert running.status == Status.FAILED
        assert running.output is None  # the output in the refused request was not kept
        assert running.error == "boom"
        assert counters.total(workspace=workspace, statuses=["failed"]) == 1

    def test_repeating_the_current_status_is_harmless(self, api, running, workspace):
        path = f"/api/v1/executions/{running.pk}"
        kept = ["status", "started_at", "completed_at", "duration_ms", "error"]
        before = Execution.objects.filter(pk=running.pk).values(*kept).get()
        counted = counters.total(workspace=workspace, statuses=["running"])
        response = patch(api, path, {"status": "running"})
        assert response.status_code == 200 and response.json()["status"] == "running"
        # Nothing moved: no timestamp stamped again, no counter counted twice.
        assert Execution.objects.filter(pk=running.pk).values(*kept).get() == before
        assert counters.total(workspace=workspace, statuses=["running"]) == counted == 1

    def test_an_unknown_status_names_the_valid_ones(self, api, running):
        response = patch(api, f"/api/v1/executions/{running.pk}", {"status": "sleeping"})
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["field"] == "status"
        assert "awaiting_approval" in error["message"]


class TestCursor:
    """The list by cursor: next/prev links walk every row once, at any depth."""

    @pytest.fixture
    def many(self, workspace):
        version = AgentVersionFactory(agent__workspace=workspace, agent__name="alpha")
        base = timezone.now() - timedelta(hours=1)
        # Pairs share a creation time, so the id breaks ties across page boundaries.
        made = [
            ExecutionFactory(agent_version=version, created_at=base + timedelta(seconds=i // 2))
            for i in range(23)
        ]
        counters.rebuild(workspace)
        return made, version

    def walk(self, api, url, rel, *, between=None):
        seen = []
        while url:
            body = api.get(url).json()
            seen.extend(r["id"] for r in (body["data"] if rel == "next" else body["data"][::-1]))
            url = body[rel]
            if url is not None:
                assert "cursor=" in url and "page=" not in url
                if between:
                    between()
        return seen

    def newest_first(self, workspace):
        rows = Execution.objects.filter(workspace=workspace).order_by("-created_at", "-id")
        return [str(pk) for pk in rows.values_list("pk", flat=True)]

    def test_next_and_prev_walk_every_row_once(self, api, many, workspace):
        _, version = many
        arrive = lambda: ExecutionFactory.create_batch(2, agent_version=version)  # noqa: E731
        before = self.newest_first(workspace)
        forwards = self.walk(api, "/api/v1/executions?limit=5&agent=alpha", "next", between=arrive)
        assert forwards == before
        # From the last page back to the top, meeting the runs that arrived meanwhile too.
        pages = -(-len(self.newest_first(workspace)) // 5)
        last = api.get(f"/api/v1/executions?limit=5&agent=alpha&page={pages}").json()
        assert last["has_more"] is False and last["prev"]
        seen = [r["id"] for r in last["data"][::-1]]
        seen += self.walk(api, last["prev"], "prev", between=arrive)
        assert seen == self.newest_first(workspace)[::-1][: len(seen)]
        assert set(seen) == set(self.newest_first(workspace))

    def test_links_keep_the_filters(self, api, many):
        body = api.get("/api/v1/executions?limit=5&agent=alpha&status=completed").json()
        assert "agent=alpha" in body["next"] and "status=completed" in body["next"]
        assert body["prev"] is None

    def test_deep_page_numbers_are_refused_pointing_to_the_cursor(self, api, many):
        response = api.get("/api/v1/executions?page=10000&limit=100")
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["field"] == "page" and "cursor" in error["message"]
        # The last page number that page= reaches still works.
        assert api.get("/api/v1/executions?page=101&limit=100").status_code == 200

    @pytest.mark.parametrize("query", ["", "agent=alpha", "status=failed", "source=api"])
    def test_deep_page_numbers_found_through_the_hours_match_offsets(
        self, api, workspace, query, monkeypatch
    ):
        """page=N past a small offset starts from the hour the rollups place it in: the
        same rows as an OFFSET from the top, on every page."""
        from executions.table import jump

        alpha = AgentVersionFactory(agent__workspace=workspace, agent__name="alpha")
        beta = AgentVersionFactory(agent__workspace=workspace, agent__name="beta")
        base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)
        for i in range(60):
            ExecutionFactory(
                agent_version=alpha if i % 3 else beta,
                created_at=base + timedelta(minutes=7 * i + 1),
                status=Status.FAILED if i % 4 == 0 else Status.COMPLETED,
            )
        counters.rebuild(workspace)

        def pages():
            return [
                [
                    r["id"]
                    for r in api.get(f"/api/v1/executions?{query}&limit=7&page={n}").json()["data"]
                ]
                for n in range(1, 11)
            ]

        monkeypatch.setattr(jump, "JUMP_MIN_ROWS", 10**9)
        by_offset = pages()
        monkeypatch.setattr(jump, "JUMP_MIN_ROWS", 1)
        with CaptureQueriesContext(connection) as ctx:
            by_hours = pages()
        assert by_hours == by_offset
        assert sum(map(len, by_offset)) >= 15
        rollups = ("executions_runrollup", "executions_statushour", "executions_agenthour")
        assert any(name in q["sql"] for q in ctx.captured_queries for name in rollups)

    @pytest.mark.parametrize("cursor", ["garbage", "WyJjb3N0IiwxLCJ4IiwibiJd"])
    def test_a_bad_cursor_names_the_field(self, api, many, cursor):
        response = api.get(f"/api/v1/executions?cursor={cursor}")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"

    def test_a_cursor_page_costs_what_page_one_does(self, api, many, django_assert_num_queries):
        first = api.get("/api/v1/executions?limit=5").json()
        with django_assert_num_queries(3):
            second = api.get(first["next"]).json()
        with django_assert_num_queries(3):
            api.get(second["next"])
