"""The detail page's server-sent events: a recorded step arrives, the end closes the stream."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone

from executions import lifecycle
from executions.ingest import services
from executions.ingest.steps import StepRecord
from executions.models import Status, StepKind, StepStatus
from tests.factories import ExecutionFactory, StepFactory

from .detail_html import parse


@pytest.fixture(autouse=True)
def fast_stream(settings):
    # A short poll keeps the tests quick; the lifetime bounds a test that would hang.
    settings.RUNBOARD_STREAM_POLL_SECONDS = 0.05
    settings.RUNBOARD_STREAM_MAX_SECONDS = 10


def parse_events(chunks) -> list[dict]:
    events = []
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        for block in text.split("\n\n"):
            if not block.strip():
                continue
            event = {"event": None, "id": None, "data": [], "retry": None, "comment": False}
            for line in block.split("\n"):
                key, _, value = line.partition(": ")
                if line.startswith(":"):
                    event["comment"] = True
                elif key == "data" or line == "data:":
                    event["data"].append(value)
                elif key in ("event", "id", "retry"):
                    event[key] = value
            event["data"] = "\n".join(event["data"])
            events.append(event)
    return events


def read_until(stream, name: str, limit: int = 50) -> list[dict]:
    """Events from the stream up to and including the first `name` event."""
    seen = []
    for _ in range(limit):
        seen += parse_events([next(stream)])
        if seen and seen[-1]["event"] == name:
            return seen
    raise AssertionError(f"no {name!r} event in {[e['event'] for e in seen]}")


def running_execution(agent_version, steps=2):
    execution = ExecutionFactory(
        agent_version=agent_version, status=Status.RUNNING, step_count=steps
    )
    for seq in range(1, steps + 1):
        StepFactory(execution=execution, sequence=seq, kind=StepKind.THOUGHT, name=f"think {seq}")
    return execution


def test_a_recorded_step_arrives_and_the_end_closes_the_stream(alice_client, agent_version):
    execution = running_execution(agent_version)
    response = alice_client.get(f"/executions/{execution.pk}/stream?after=2")
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"].startswith("no-cache")
    stream = iter(response.streaming_content)

    opening = read_until(stream, "regions")
    assert opening[0]["retry"] == "1000"
    regions = parse(opening[-1]["data"])
    assert regions.one(id="run-badge").one("span", cls="badge").attrs["data-status"] == "running"
    assert regions.select(id="step-counters") and regions.select(id="run-facts")

    # Record a step the way ingestion does.
    started = timezone.now()
    services.steps_append(
        workspace=execution.workspace,
        execution_id=execution.pk,
        records=[
            StepRecord(
                sequence=3,
                kind=StepKind.ACTION,
                name="click Submit",
                status=StepStatus.COMPLETED,
                started_at=started,
                ended_at=started + timedelta(milliseconds=420),
                input={"action": "click", "element": "Submit"},
            )
        ],
    )
    events = read_until(stream, "step")
    step = events[-1]
    assert step["id"] == "3"
    card = parse(step["data"]).one("li")
    assert card.attrs["id"] == "step-3"
    assert {"step", "kind-action", "st-completed"} <= card.classes
    assert "click Submit" in card.text

    # The header follows: three steps now.
    regions = parse(read_until(stream, "regions")[-1]["data"])
    assert regions.one(id="step-counters").text.split()[:2] == ["3", "steps"]
    assert regions.one(id="tab-count-overview").text == "3"

    execution.refresh_from_db()
    lifecycle.transition(execution, Status.COMPLETED)
    final = read_until(stream, "done")
    assert final[-1]["data"] == "completed"
    last_regions = [e for e in final if e["event"] == "regions"][-1]
    doc = parse(last_regions["data"])
    assert doc.one(id="run-badge").one("span", cls="badge").attrs["data-status"] == "completed"
    assert doc.select(id="run-outcome") and doc.select(id="run-actions")
    with pytest.raises(StopIteration):
        next(stream)


def test_a_running_step_that_finishes_replaces_its_card(alice_client, agent_version):
    execution = running_execution(agent_version, steps=1)
    tool = StepFactory(
        execution=execution, sequence=2, kind=StepKind.TOOL_CALL, status=StepStatus.RUNNING
    )
    stream = iter(alice_client.get(f"/executions/{execution.pk}/stream?after=1").streaming_content)
    first = read_until(stream, "step")
    assert "st-running" in parse(first[-1]["data"]).one("li").classes
    tool.status, tool.duration_ms, tool.output = StepStatus.FAILED, 900, {"error": "boom"}
    tool.error = "boom"
    tool.save()
    changed = read_until(stream, "step")[-1]
    card = parse(changed["data"]).one("li")
    assert card.attrs["id"] == "step-2" and "st-failed" in card.classes
    counters = parse(read_until(stream, "regions")[-1]["data"]).one(id="step-counters")
    assert "1 failed" in " ".join(counters.text.split())


def test_an_ended_execution_sends_what_is_left_and_one_done(alice_client, agent_version):
    execution = running_execution(agent_version, steps=3)
    lifecycle.transition(execution, Status.FAILED, error="nope")
    events = parse_events(
        alice_client.get(f"/executions/{execution.pk}/stream?after=1").streaming_content
    )
    names = [e["event"] for e in events if e["event"]]
    assert names == ["step", "step", "regions", "done"]
    assert [e["id"] for e in events if e["event"] == "step"] == ["2", "3"]
    assert events[-1]["data"] == "failed"


def test_last_event_id_resumes_after_what_was_sent(alice_client, agent_version):
    execution = running_execution(agent_version, steps=4)
    lifecycle.transition(execution, Status.COMPLETED)
    response = alice_client.get(
        f"/executions/{execution.pk}/stream?after=1", HTTP_LAST_EVENT_ID="3"
    )
    steps = [e["id"] for e in parse_events(response.streaming_content) if e["event"] == "step"]
    assert steps == ["4"]


def test_once_answers_at_once_for_polling(alice_client, agent_version):
    execution = running_execution(agent_version, steps=2)
    response = alice_client.get(f"/executions/{execution.pk}/stream?after=1&once=1")
    events = parse_events(response.streaming_content)  # returns without waiting for the end
    assert [e["event"] for e in events if e["event"]] == ["step", "regions"]


def test_a_server_that_cannot_stream_makes_eventsource_poll(alice_client, agent_version, settings):
    settings.RUNBOARD_STREAM_MAX_SECONDS = 0
    execution = running_execution(agent_version, steps=1)
    events = parse_events(
        alice_client.get(f"/executions/{execution.pk}/stream?after=1").streaming_content
    )
    assert events[0]["retry"] == "1000"  # EventSource reconnects after a second
    assert "done" not in [e["event"] for e in events]


def test_another_workspaces_stream_is_404(charlie_client, agent_version):
    execution = running_execution(agent_version)
    assert charlie_client.get(f"/executions/{execution.pk}/stream").status_code == 404


def test_the_stream_needs_a_login(client, agent_version):
    execution = running_execution(agent_version)
    response = client.get(f"/executions/{execution.pk}/stream")
    assert response.status_code == 302


def test_under_asgi_the_stream_is_asynchronous(alice, agent_version):
    execution = running_execution(agent_version, steps=2)
    lifecycle.transition(execution, Status.COMPLETED)

    async def fetch():
        client = AsyncClient()
        await client.aforce_login(alice)
        response = await client.get(f"/executions/{execution.pk}/stream?after=1")
        assert response.is_async
        return [chunk async for chunk in response.streaming_content]

    events = parse_events(async_to_sync(fetch)())
    assert [e["event"] for e in events if e["event"]] == ["step", "regions", "done"]
