"""The demo runtime: it checks signatures, ignores duplicates, and, end to end against a
live server, plays runs that pause for approval and stop when cancelled."""

import json
import socket
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from agents.models import AgentVersion, ApiKey
from executions.control import dispatch
from executions.control import services as control
from executions.demo.runtime import Run, Runtime, Stop, make_handler
from executions.models import Artifact, Execution, Status

from ..factories import AgentVersionFactory
from .conftest import run_worker


def signed(version: AgentVersion, event="execute", execution_id="e1", secret=None):
    body = json.dumps(
        {
            "event": event,
            "execution": {
                "id": execution_id,
                "agent": version.agent.name,
                "version": version.version,
                "input": {},
            },
        }
    ).encode()
    return body, {dispatch.SIGNATURE_HEADER: dispatch.sign(body, secret or version.webhook_secret)}


@pytest.fixture
def runtime(workspace, db):
    AgentVersionFactory(agent__workspace=workspace, agent__name="receipt-reader")
    runtime = Runtime(api_base="http://127.0.0.1:9", step_delay=0)
    runtime.configure(workspace=workspace, hook_base="http://127.0.0.1:8765")
    return runtime


def test_configure_points_the_versions_here_with_secrets_and_a_key(runtime, workspace):
    version = AgentVersion.objects.get(agent__name="receipt-reader")
    assert version.webhook_url == "http://127.0.0.1:8765/hooks/receipt-reader"
    assert len(version.webhook_secret) > 20
    assert ApiKey.objects.filter(workspace=workspace, name="demo runtime").active().count() == 1
    runtime.configure(workspace=workspace, hook_base="http://127.0.0.1:8765")
    assert ApiKey.objects.filter(workspace=workspace, name="demo runtime").active().count() == 1


def test_it_refuses_bad_signatures_and_unknown_agents(runtime, monkeypatch):
    monkeypatch.setattr(Runtime, "_play", lambda self, run: None)
    version = AgentVersion.objects.get(agent__name="receipt-reader")
    body, headers = signed(version, secret="not-the-secret")
    assert runtime.receive(body, headers)[0] == 401
    assert runtime.receive(body, {})[0] == 401
    stranger = AgentVersionFactory(agent__name="stranger", webhook_secret="x")
    assert runtime.receive(*signed(stranger))[0] == 404
    assert runtime.receive(b"not json", {})[0] == 400


def test_a_duplicate_delivery_is_ignored_by_execution_id(runtime, monkeypatch):
    played = []
    first_play = threading.Event()

    def play(self, run):
        played.append(run.id)
        first_play.set()

    monkeypatch.setattr(Runtime, "_play", play)
    version = AgentVersion.objects.get(agent__name="receipt-reader")
    assert runtime.receive(*signed(version))[0] == 202
    assert runtime.receive(*signed(version)) == (200, {"duplicate": True})
    assert runtime.receive(*signed(version, event="cancel"))[0] == 200
    assert runtime.runs["e1"].cancelled.is_set()
    # receive() starts a run's thread before it answers, so every thread there is to
    # wait for was started by now; the duplicate started none.
    assert first_play.wait(timeout=10)
    assert played == ["e1"]


# --- end to end -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("gave up waiting")


@pytest.fixture
def live_runtime(live_server, workspace, db_queue):
    """The demo runtime on a real port, reporting to a live Runboard."""
    # On loopback, as under `make run`, which allows it the same way.
    db_queue.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1", "::1"]
    AgentVersionFactory(
        agent__workspace=workspace, agent__name="receipt-reader", time_limit_seconds=3600
    )
    port = free_port()
    runtime = Runtime(api_base=live_server.url, step_delay=0.3)
    runtime.configure(workspace=workspace, hook_base=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(runtime))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    version = AgentVersion.objects.get(agent__name="receipt-reader")
    version.runtime = runtime
    yield version
    server.shutdown()
    server.server_close()


def status_of(execution):
    execution.refresh_from_db()
    return execution.status


@pytest.mark.django_db(transaction=True)
def test_a_run_pauses_for_approval_then_completes(live_runtime, workspace, bob):
    execution = control.execution_execute(
        workspace=workspace,
        agent_version=live_runtime,
        inputs={"file": "r.jpg", "demo": {"approval": True, "fail": False, "steps": 1}},
    )
    run_worker()
    until(lambda: status_of(execution) == Status.AWAITING_APPROVAL)
    assert execution.approval_request["action"] == "submit_form"

    control.execution_approve(execution=execution, user=bob, note="fine")
    run_worker()

    until(lambda: status_of(execution) == Status.COMPLETED)
    kinds = list(execution.steps.order_by("sequence").values_list("kind", flat=True))
    assert kinds[:3] == ["thought", "model_call", "action"]
    assert execution.output["result"] == "ok"
    checkpoint = execution.steps.get(kind="approval")
    assert checkpoint.status == "completed" and checkpoint.output["decision"] == "approved"
    assert checkpoint.output["note"] == "fine" and checkpoint.output["decided_by"] == "bob"
    shot = Artifact.objects.get(execution=execution)
    assert shot.kind == "screenshot" and shot.content_type == "image/png"
    assert shot.step.kind == "action"


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_run_stops_reporting(live_runtime, workspace, monkeypatch):
    stopped: dict[str, threading.Event] = {}
    stopped_by = []
    real_play = Run.play

    def play_then_say_so(self):
        try:
            real_play(self)
            stopped_by.append(("finished", self.id))
        except Stop:
            stopped_by.append(("stopped", self.id))
            raise
        finally:
            stopped[self.id].set()

    monkeypatch.setattr(Run, "play", play_then_say_so)
    execution = control.execution_execute(
        workspace=workspace,
        agent_version=live_runtime,
        inputs={"demo": {"approval": False, "fail": False, "steps": 20, "delay": 0.5}},
    )
    stopped[str(execution.pk)] = threading.Event()
    run_worker()
    until(lambda: execution.steps.count() >= 2)

    control.execution_cancel(execution=execution)
    run_worker()  # delivers the cancel webhook
    # The run's thread is the only one reporting its steps: once it has stopped,
    # nothing more can arrive.
    assert stopped[str(execution.pk)].wait(timeout=30)

    assert status_of(execution) == Status.CANCELLED
    assert 2 <= execution.steps.count() < 20
    assert stopped_by == [("stopped", str(execution.pk))]


@pytest.mark.django_db(transaction=True)
def test_the_copied_curl_starts_a_new_run_like_this_one(
    live_runtime, live_server, workspace, alice
):
    """API & Webhooks -> "start a new run like this one": the command on the page, run
    by a shell against a live server, queues a run its runtime then plays."""
    import html
    import os
    import re
    import subprocess
    from urllib.parse import urlsplit

    from django.test import Client

    from tests.factories import ApiKeyFactory, ExecutionFactory

    old = ExecutionFactory(
        agent_version=live_runtime,
        status=Status.COMPLETED,
        input={"file": "r.jpg", "demo": {"approval": False, "fail": False, "steps": 1}},
        metadata={"customer": "acme"},
    )
    _, raw_key = ApiKeyFactory.create_with_raw(workspace=workspace)
    client = Client(HTTP_HOST=urlsplit(live_server.url).netloc)
    client.force_login(alice)
    page = client.get(f"/executions/{old.pk}/?tab=request").content.decode()
    found = re.search(r'<textarea hidden id="curl-[^"]+" readonly>(.*?)</textarea>', page, re.S)
    command = html.unescape(found.group(1))
    assert f"{live_server.url}/api/v1/agents/receipt-reader:" in command

    done = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --fail-with-body"],
        env={**os.environ, "RUNBOARD_API_KEY": raw_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    answer = json.loads(done.stdout)
    assert answer["status"] == "queued" and answer["id"] != str(old.pk)
    new = Execution.objects.get(pk=answer["id"])
    assert new.input == old.input and new.metadata == old.metadata
    assert new.agent_version_id == live_runtime.pk

    run_worker()  # hands it to the runtime by webhook
    until(lambda: status_of(new) == Status.COMPLETED)
    assert new.steps.exists() and new.started_at is not None


@pytest.mark.django_db(transaction=True)
def test_it_adopts_the_runs_already_under_way(live_runtime, workspace, bob):
    """The seeded demo's active runs were never sent to a runtime: on start it carries
    each on from where it is, so none sits until it times out."""
    from django.utils import timezone

    from executions import lifecycle
    from tests.factories import ExecutionFactory, StepFactory

    # Steered so that no run stops at a checkpoint of its own or fails.
    demo = {"demo": {"fail": False, "approval": False, "steps": 1}}
    queued = ExecutionFactory(agent_version=live_runtime, status=Status.QUEUED, input=demo)
    running = ExecutionFactory(
        agent_version=live_runtime, status=Status.RUNNING, input=demo, started_at=timezone.now()
    )
    StepFactory(execution=running, sequence=1, kind="thought", status="completed")
    busy = StepFactory(execution=running, sequence=2, kind="tool_call", status="running")
    paused = ExecutionFactory(agent_version=live_runtime, status=Status.RUNNING, input=demo)
    ask = {"action": "refund", "amount": 120}
    checkpoint = StepFactory(
        execution=paused, sequence=1, kind="approval", status="running", input=ask
    )
    lifecycle.transition(paused, Status.AWAITING_APPROVAL)
    finished = ExecutionFactory(agent_version=live_runtime, status=Status.COMPLETED)

    assert live_runtime.runtime.adopt(workspace=workspace, stagger=0) == 3
    assert str(finished.pk) not in live_runtime.runtime.runs

    until(lambda: status_of(queued) == Status.COMPLETED)
    until(lambda: status_of(running) == Status.COMPLETED)
    busy.refresh_from_db()
    assert busy.status == "completed"
    assert running.steps.count() > 2  # it carried on after the step it was in
    assert status_of(paused) == Status.AWAITING_APPROVAL

    control.execution_approve(execution=paused, user=bob, note="ok")
    run_worker()  # the approved webhook reaches the adopted run
    until(lambda: status_of(paused) == Status.COMPLETED)
    checkpoint.refresh_from_db()
    assert checkpoint.status == "completed" and checkpoint.output["decision"] == "approved"
    # Adopting again takes nothing twice.
    assert live_runtime.runtime.adopt(workspace=workspace, stagger=0) == 0


def test_a_finished_run_answers_output_that_fits_the_output_schema():
    """UI-started demo runs end with output of their agent's schema, not a placeholder."""
    import random

    from agents.validation import schema_errors
    from executions.demo.catalog import AGENTS
    from executions.demo.samples import sample

    schemas = [v[3] for agent in AGENTS.values() for v in agent["versions"] if v[3]]
    assert schemas
    for schema in schemas:
        for seed in range(5):
            value = sample(schema, random.Random(seed))
            assert schema_errors(schema, value, root="output") == []
            assert value != {"result": "ok"}


def test_finish_reports_the_sampled_output(monkeypatch):
    from agents.validation import schema_errors

    schema = {
        "type": "object",
        "required": ["total", "currency"],
        "properties": {
            "total": {"type": "number", "minimum": 0},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
    }
    runtime = Runtime(api_base="http://127.0.0.1:9", step_delay=0)
    runtime.output_schemas[("receipt-reader", "v1")] = schema
    calls = []

    class Recorder:
        def call(self, method, path, body=None, **kwargs):
            calls.append((method, path, body))
            return {}

    payload = {"execution": {"id": "e1", "agent": "receipt-reader", "version": "v1"}}
    Run(runtime, payload, Recorder()).finish()
    method, _, body = calls[-1]
    assert method == "PATCH" and body["status"] == "completed"
    assert schema_errors(schema, body["output"], root="output") == []
