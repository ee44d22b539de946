"""Long poll (wait), server-sent events (stream), and files/artifacts."""

import json
import time
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from executions import lifecycle
from executions.ingest import api as executions_api
from executions.models import Artifact, Execution, Status, StepKind, StepStatus
from tests.factories import ExecutionFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(agent_version):
    return ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)


@pytest.fixture
def fast(settings):
    settings.RUNBOARD_API_POLL_SECONDS = 0.01
    settings.RUNBOARD_API_STREAM_MAX_SECONDS = 0.3


class Clock:
    """The wait's clock, stood in for the `time` module inside the API module: sleeping
    moves it on at once, so a test states exactly how long the server waited."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch, settings):
    settings.RUNBOARD_API_POLL_SECONDS = 0.125  # binary fractions: sums are exact
    clock = Clock()
    monkeypatch.setattr(executions_api, "time", clock)
    return clock


class TestWait:
    def test_an_ended_execution_answers_at_once(self, api, agent_version, clock):
        done = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
        body = api.get(f"/api/v1/executions/{done.pk}/wait").json()
        assert body["status"] == "completed"
        assert body["wait"]["ended"] is True and body["wait"]["timed_out"] is False
        assert clock.sleeps == [] and body["wait"]["waited_ms"] == 0

    def test_it_returns_when_the_execution_ends(self, api, running, clock):
        def runtime_reports(sleeps):
            # While the client waits, the runtime reports completion.
            if sleeps == 3:
                lifecycle.transition(Execution.objects.get(pk=running.pk), Status.COMPLETED)

        clock.on_sleep = runtime_reports
        body = api.get(f"/api/v1/executions/{running.pk}/wait?timeout=30").json()
        assert clock.sleeps == [0.125] * 3
        assert body["status"] == "completed"
        assert body["wait"] == {**body["wait"], "ended": True, "timed_out": False}
        assert body["wait"]["waited_ms"] == 375

    def test_it_gives_up_after_the_timeout(self, api, running, clock):
        body = api.get(f"/api/v1/executions/{running.pk}/wait?timeout=0.5").json()
        assert body["status"] == "running"
        assert body["wait"]["timed_out"] is True and body["wait"]["ended"] is False
        assert body["wait"]["timeout_seconds"] == 0.5
        assert clock.sleeps == [0.125] * 4 and body["wait"]["waited_ms"] == 500

    def test_a_long_timeout_is_capped(self, api, running, settings):
        settings.RUNBOARD_API_WAIT_MAX_SECONDS = 0.05
        body = api.get(f"/api/v1/executions/{running.pk}/wait?timeout=600").json()
        assert body["wait"]["timeout_seconds"] == 0.05
        assert api.get(f"/api/v1/executions/{running.pk}/wait?timeout=-1").status_code == 422

    def test_another_workspaces_execution_is_404(self, other_api, running):
        assert other_api.get(f"/api/v1/executions/{running.pk}/wait").status_code == 404


def frames(chunks) -> list[tuple[str, dict]]:
    """(event, data) of each SSE frame in the chunks read so far."""
    out = []
    for block in "".join(chunks).split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


class TestStream:
    def test_an_ended_execution_sends_a_single_done_frame(self, api, agent_version):
        done = ExecutionFactory(
            agent_version=agent_version, status=Status.COMPLETED, output={"answer": 1}
        )
        StepFactory(execution=done, kind=StepKind.THOUGHT)
        response = api.get(f"/api/v1/executions/{done.pk}/stream")
        assert response["Content-Type"] == "text/event-stream"
        got = frames(c.decode() for c in response.streaming_content)
        assert got == [
            (
                "done",
                {
                    "type": "done",
                    "execution_id": str(done.pk),
                    "status": "completed",
                    "output": {"answer": 1},
                    "token_usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "cost": float(Decimal("0.0123")),
                    "duration_ms": 3000,
                },
            )
        ]

    def test_a_failed_execution_sends_an_error_frame(self, api, agent_version):
        failed = ExecutionFactory(
            agent_version=agent_version, status=Status.FAILED, error="ValueError: bad page"
        )
        got = frames(c.decode() for c in api.get(f"/api/v1/executions/{failed.pk}/stream"))
        assert [(e, d["error"]) for e, d in got] == [("error", "ValueError: bad page")]

    def test_steps_become_frames_as_they_happen(self, api, running, fast):
        StepFactory(execution=running, kind=StepKind.THOUGHT, output="Look up the vendor.")
        StepFactory(
            execution=running,
            kind=StepKind.TOOL_CALL,
            name="vendor_lookup",
            span_id="t1",
            input={"q": "acme"},
            output={"id": 7},
            status=StepStatus.COMPLETED,
        )
        response = api.get(f"/api/v1/executions/{running.pk}/stream")
        content = iter(response.streaming_content)
        chunks = [next(content).decode()]
        assert [e for e, _ in frames(chunks)] == ["thinking", "tool_start", "tool_end"]
        thinking, start, end = (d for _, d in frames(chunks))
        assert thinking["content"] == "Look up the vendor."
        assert (start["name"], start["input"], start["tool_call_id"]) == (
            "vendor_lookup",
            {"q": "acme"},
            "t1",
        )
        assert end["output"] == {"id": 7}

        # While the client listens: a tool starts, then the model answers and it ends.
        tool = StepFactory(
            execution=running, kind=StepKind.TOOL_CALL, name="fetch", status=StepStatus.RUNNING
        )
        chunks.append(next(content).decode())
        assert frames(chunks)[-1][0] == "tool_start"
        tool.status = StepStatus.COMPLETED
        tool.output = "page text"
        tool.save()
        StepFactory(
            execution=running,
            kind=StepKind.MODEL_CALL,
            model="gpt-4o",
            output=[{"role": "assistant", "content": "Acme Corp, "}, {"content": "vendor 7."}],
        )
        lifecycle.transition(running, Status.COMPLETED)
        chunks.extend(c.decode() for c in content)
        events = [e for e, _ in frames(chunks)]
        assert events[3:] == ["tool_start", "tool_end", "content", "done"]
        assert frames(chunks)[5][1]["content"] == "Acme Corp, vendor 7."

    def test_the_stream_ends_at_its_time_limit_and_resumes_from_last_event_id(
        self, api, running, fast
    ):
        first = StepFactory(execution=running, kind=StepKind.THOUGHT, output="one")
        chunks = [c.decode() for c in api.get(f"/api/v1/executions/{running.pk}/stream")]
        assert chunks[-1].startswith(": time limit")
        StepFactory(execution=running, kind=StepKind.THOUGHT, output="two")
        resumed = api.get(
            f"/api/v1/executions/{running.pk}/stream", HTTP_LAST_EVENT_ID=str(first.pk)
        )
        got = frames(c.decode() for c in resumed)
        assert [d["content"] for _, d in got] == ["two"]

    def test_another_workspaces_stream_is_404(self, other_api, running):
        assert other_api.get(f"/api/v1/executions/{running.pk}/stream").status_code == 404


class TestFiles:
    def test_upload_then_download_by_execution_and_object_id(self, api, running):
        upload = SimpleUploadedFile("page-1.png", b"\x89PNG fake", content_type="image/png")
        response = api.post(
            "/api/v1/files",
            {
                "file": upload,
                "execution_id": str(running.pk),
                "bounding_boxes": json.dumps([{"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.1}]),
            },
        )
        assert response.status_code == 201, response.content
        body = response.json()
        artifact = Artifact.objects.get(pk=body["file_id"])
        assert (artifact.execution, artifact.kind, artifact.size) == (running, "image", 9)
        assert artifact.bounding_boxes[0]["width"] == 0.3
        assert body["url"] == f"/api/v1/executions/{running.pk}/artifacts/{artifact.pk}"
        assert body["public_url"].startswith("http://testserver/")
        download = api.get(body["url"])
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == b"\x89PNG fake"
        assert download["Content-Type"] == "image/png"
        assert "sandbox" in download["Content-Security-Policy"]

    def test_a_file_on_its_own_then_attached_to_a_step(self, api, running):
        StepFactory(execution=running, sequence=4, span_id="s4")
        loose = api.post("/api/v1/files", {"file": SimpleUploadedFile("notes.txt", b"hi")}).json()
        assert loose["execution_id"] is None
        assert b"".join(api.get(loose["url"]).streaming_content) == b"hi"
        attached = api.post(
            f"/api/v1/executions/{running.pk}/artifacts",
            {"file": SimpleUploadedFile("shot.png", b"png"), "step_span_id": "s4"},
        )
        assert attached.status_code == 201
        assert Artifact.objects.get(pk=attached.json()["id"]).step.sequence == 4

    def test_bad_uploads_say_why(self, api, running, settings):
        missing = api.post("/api/v1/files", {"execution_id": str(running.pk)})
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "file"
        boxes = api.post(
            "/api/v1/files",
            {"file": SimpleUploadedFile("a.png", b"x"), "bounding_boxes": '[{"x": 2}]'},
        )
        assert boxes.status_code == 422
        assert boxes.json()["errors"][0]["field"] == "bounding_boxes[0].x"
        step = api.post(
            f"/api/v1/executions/{running.pk}/artifacts",
            {"file": SimpleUploadedFile("a.png", b"x"), "step_sequence": "77"},
        )
        assert (step.status_code, step.json()["errors"][0]["field"]) == (422, "step_sequence")
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
        big = api.post("/api/v1/files", {"file": SimpleUploadedFile("big.bin", b"x" * 100)})
        assert big.status_code == 413
        assert "limit" in big.json()["detail"]
        assert not Artifact.objects.exists()

    def test_other_workspaces_cannot_read_or_attach(self, api, other_api, running):
        body = api.post(
            "/api/v1/files",
            {"file": SimpleUploadedFile("a.txt", b"secret"), "execution_id": str(running.pk)},
        ).json()
        assert other_api.get(body["url"]).status_code == 404
        assert other_api.get(f"/api/v1/files/{body['id']}").status_code == 404
        attach = other_api.post(
            f"/api/v1/executions/{running.pk}/artifacts",
            {"file": SimpleUploadedFile("b.txt", b"x")},
        )
        assert attach.status_code == 404
        assert Artifact.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_stream_is_an_async_iterator(workspace, raw_key, agent_version, fast):
    """Django reads a sync iterator to its end before sending it under ASGI, so the
    ASGI path must hand it an async one that yields frames as they happen."""
    from asgiref.sync import async_to_sync, sync_to_async
    from django.test import AsyncClient

    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    StepFactory(execution=running, kind=StepKind.THOUGHT, output="first")
    client = AsyncClient()

    async def listen():
        response = await client.get(
            f"/api/v1/executions/{running.pk}/stream",
            headers={"Authorization": f"Bearer {raw_key}"},
        )
        assert response.status_code == 200, response.content
        assert response.is_async
        content = aiter(response.streaming_content)
        chunks = [(await anext(content)).decode()]
        # The first frames arrived while the execution still runs; now it ends.
        await sync_to_async(lifecycle.transition)(
            await sync_to_async(Execution.objects.get)(pk=running.pk), Status.COMPLETED
        )
        async for chunk in content:
            chunks.append(chunk.decode())
        return chunks

    chunks = async_to_sync(listen)()
    assert [event for event, _ in frames(chunks[:1])] == ["thinking"]
    assert [event for event, _ in frames(chunks)] == ["thinking", "done"]
