"""At least once, with real processes: a worker is SIGKILLed while it is delivering a
webhook, and the execution is delivered again by another worker, never lost.

The worker and scheduler run as `manage.py` subprocesses against a database both
they and this test can see: the PostgreSQL test database when the suite runs on
PostgreSQL, otherwise a fresh SQLite file (the suite's own SQLite database lives in
memory, where no other process can reach it).
"""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest
from werkzeug import Request, Response

from .conftest import BASE_DIR, manage

pytestmark = pytest.mark.django_db(transaction=True)

SETUP = """
from agents.models import Agent, AgentVersion, Workspace
from executions.control import services as control
ws = Workspace.objects.create(name="Kill test", slug="kill-test")
agent = Agent.objects.create(workspace=ws, name="invoice-extractor")
version = AgentVersion.objects.create(
    agent=agent, version="v1", webhook_url={url!r}, webhook_secret="s3cret"
)
print(control.execution_execute(workspace=ws, agent_version=version, inputs={{"file": "a"}}).id)
"""

REPORT = """
import json
from django_tasks_db.models import DBTaskResult
from executions.models import WebhookDelivery
print(json.dumps({
    "deliveries": list(WebhookDelivery.objects.order_by("pk").values(
        "attempt", "status_code", "succeeded", "error")),
    "tasks": list(DBTaskResult.objects.values("status", "worker_ids")),
}))
"""


def test_a_worker_killed_mid_delivery_loses_nothing(httpserver, process_env):
    arrived, release = threading.Event(), threading.Event()
    seen = []

    def runtime(request: Request) -> Response:
        seen.append(json.loads(request.get_data())["execution"]["id"])
        if len(seen) == 1:
            arrived.set()
            release.wait(30)  # hold the first delivery open until its worker is dead
        return Response("{}", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(runtime)
    setup = SETUP.format(url=httpserver.url_for("/hook"))
    execution_id = manage(process_env, "shell", "--no-imports", "-c", setup).strip()

    doomed = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay",
         "--interval", "0.1", "--worker-id", "doomed"],
        cwd=BASE_DIR, env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert arrived.wait(60), "the first worker never delivered the webhook"
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    finally:
        release.set()
        if doomed.poll() is None:
            doomed.kill()

    # The dead worker's claim is still RUNNING; the scheduler round reclaims it.
    assert "reclaimed 1 task(s)" in manage(
        process_env, "runboard_scheduler", "--once", "--lease", "0"
    )
    manage(
        process_env, "db_worker", "--batch", "--no-reload", "--no-startup-delay",
        "--worker-id", "rescuer",
    )  # fmt: skip

    assert seen == [execution_id] * 2
    report = json.loads(manage(process_env, "shell", "--no-imports", "-c", REPORT))
    first, second = report["deliveries"]
    assert first["status_code"] is None and "worker stopped" in first["error"]
    assert second["succeeded"] and second["status_code"] == 200
    assert report["tasks"] == [{"status": "SUCCESSFUL", "worker_ids": ["doomed", "rescuer"]}]
