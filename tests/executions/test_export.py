"""CSV and JSON exports of the executions table: streamed, filtered, scoped."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse

from agents.models import Agent
from executions import counters
from executions.models import Status
from tests.factories import AgentVersionFactory, BatchFactory, ExecutionFactory, ScheduleFactory

pytestmark = pytest.mark.django_db


def make(agent_version, n=1, **fields):
    made = ExecutionFactory.create_batch(n, agent_version=agent_version, **fields)
    counters.rebuild(agent_version.agent.workspace)
    return made


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


def test_csv_has_every_column_and_exact_values(alice_client, agent_version):
    schedule = ScheduleFactory(agent_version=agent_version, name="Nightly")
    batch = BatchFactory(workspace=agent_version.agent.workspace)
    run = make(
        agent_version,
        status=Status.FAILED,
        error="Timeout, after 30s\nretrying",
        summary="half done",
        metadata={"customer": "acme", "n": 3},
        duration_ms=4200,
        step_count=6,
        total_tokens=1234,
        cost_usd=Decimal("0.012345"),
        credits=None,
        schedule=schedule,
        batch=batch,
    )[0]
    response = alice_client.get("/executions/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="executions-' in response["Content-Disposition"]
    rows = read_csv(response)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(run.pk)
    assert (row["agent"], row["version"], row["agent_removed"]) == (
        "invoice-extractor",
        "v1",
        "false",
    )
    assert (row["status"], row["schedule"], row["batch_id"]) == ("failed", "Nightly", str(batch.pk))
    assert (row["duration_ms"], row["steps"], row["total_tokens"]) == ("4200", "6", "1234")
    assert row["cost_usd"] == "0.012345" and row["credits"] == ""
    assert row["error"] == "Timeout, after 30s\nretrying"
    assert json.loads(row["metadata"]) == {"customer": "acme", "n": 3}
    assert row["created_at"].endswith("Z")


def test_json_is_an_array_of_objects(alice_client, agent_version):
    made = make(agent_version, 3, credits=Decimal("2.5"))
    response = alice_client.get("/executions/export.json?sort=started")
    assert response["Content-Type"].startswith("application/json")
    data = json.loads(body(response))
    assert [d["id"] for d in data] == [
        str(e.pk) for e in sorted(made, key=lambda e: (e.created_at, e.pk.hex))
    ]
    assert data[0]["credits"] == "2.5000" and data[0]["agent_removed"] is False
    assert set(data[0]) >= {"id", "agent", "status", "duration_ms", "cost_usd", "metadata"}


def test_empty_export_is_valid(alice_client):
    assert json.loads(body(alice_client.get("/executions/export.json"))) == []
    assert read_csv(alice_client.get("/executions/export.csv")) == []


def test_export_follows_the_filters_and_sort(alice_client, agent_version):
    make(agent_version, 2, status=Status.COMPLETED)
    slow = make(agent_version, status=Status.FAILED, duration_ms=9000)[0]
    fast = make(agent_version, status=Status.FAILED, duration_ms=100)[0]
    rows = read_csv(alice_client.get("/executions/export.csv?status=failed&sort=-duration"))
    assert [r["id"] for r in rows] == [str(slow.pk), str(fast.pk)]
    # A file cannot show a notice beside the field as the page does, and a download that
    # quietly dropped a filter would hold rows nobody asked for: it says what is wrong.
    bad = alice_client.get("/executions/export.csv?status=nope")
    assert bad.status_code == 400 and b"status: Select a valid choice" in bad.content


def test_export_of_selected_ids_only_and_only_this_workspace(
    alice_client, agent_version, other_workspace
):
    picked = make(agent_version, 3)
    make(agent_version, 2)
    theirs = make(AgentVersionFactory(agent__workspace=other_workspace))[0]
    query = "&".join(f"ids={e.pk}" for e in [*picked[:2], theirs])
    rows = read_csv(alice_client.get(f"/executions/export.csv?{query}"))
    assert {r["id"] for r in rows} == {str(picked[0].pk), str(picked[1].pk)}
    bad = alice_client.get("/executions/export.csv?ids=not-an-id")
    assert bad.status_code == 400 and b"not execution ids" in bad.content


def test_removed_agent_and_formula_like_text_are_safe(alice_client, agent_version):
    run = make(agent_version, status=Status.FAILED, error='=HYPERLINK("http://x")')[0]
    Agent.objects.filter(pk=agent_version.agent_id).delete()
    row = read_csv(alice_client.get("/executions/export.csv"))[0]
    assert row["id"] == str(run.pk)
    assert row["agent_removed"] == "true" and row["agent"] == "invoice-extractor"
    assert row["error"] == '\'=HYPERLINK("http://x")'


def test_export_streams_in_chunks_with_a_server_side_iterator(
    alice_client, agent_version, monkeypatch
):
    """100,000 rows never sit in memory: rows are read with .iterator() and written one by one."""
    from django.db.models.query import QuerySet

    from executions.table import export

    make(agent_version, 5)
    seen = []
    original = QuerySet.iterator

    def iterator(self, chunk_size=None):
        seen.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", iterator)
    monkeypatch.setattr(export, "CHUNK_SIZE", 2)
    response = alice_client.get("/executions/export.json")
    assert response.streaming
    assert seen == [2]
    chunks = list(response.streaming_content)
    assert len(chunks) == 5 + 2  # "[", one per row, "]"
