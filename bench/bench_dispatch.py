"""Control plane throughput: how fast executions are queued, and how fast one worker
hands them to a runtime as signed webhooks (issue 7). Prints figures, asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_x \
        .venv/bin/python bench/bench_dispatch.py [--executions 500]
    .venv/bin/python bench/bench_dispatch.py      # a fresh SQLite file in /tmp

It runs with bench/settings.py (DEBUG off), so no query log grows while it times.

It makes its own workspace (`bench-dispatch`, replaced on every run) and a local HTTP
server that answers every webhook 200 at once, so the figures are Runboard's cost:
the execute service, the queue, signing, the delivery log, not a runtime's.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["LOG_LEVEL"] = "WARNING"
    if not os.environ.get("DATABASE_URL") and not os.environ.get("SQLITE_PATH"):
        os.environ["SQLITE_PATH"] = str(Path(tempfile.mkdtemp()) / "bench-dispatch.sqlite3")
    from common import setup as bench_setup

    bench_setup(require_postgres=False)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import logging

    for name in ("django.tasks", "django_tasks_db"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=500)
    args = parser.parse_args()
    setup()
    from common import print_end, print_start

    print_start("Control plane: queueing and webhook delivery (issue 7)")

    from django.db import connection
    from django_tasks_db.management.commands.db_worker import Worker

    from agents.models import Agent, AgentVersion, Workspace
    from executions.control import services as control
    from executions.models import TERMINAL_STATUSES, WebhookDelivery

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    cleanup()
    workspace = Workspace.objects.create(name="Bench dispatch", slug="bench-dispatch")
    agent = Agent.objects.create(workspace=workspace, name="bench-agent")
    version = AgentVersion.objects.create(
        agent=agent,
        version="v1",
        webhook_url=url,
        webhook_secret="bench-secret",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    n = args.executions
    print(f"database: {connection.vendor}, executions: {n}")

    timings = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        control.execution_execute(
            workspace=workspace,
            agent_version=version,
            inputs={"n": i},
            priority=("low", "normal", "high")[i % 3],
        )
        timings.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    timings.sort()
    p95 = timings[int(len(timings) * 0.95)]
    print(
        f"execute (validate, insert, count, enqueue): {n / elapsed:,.0f}/s; "
        f"median {statistics.median(timings):.2f} ms, p95 {p95:.2f} ms"
    )

    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="bench",
        excluded_queue_names=[],
    )
    started = time.perf_counter()
    worker.run()
    elapsed = time.perf_counter() - started
    delivered = WebhookDelivery.objects.filter(execution__workspace=workspace, succeeded=True)
    print(
        f"one worker, signed webhook + delivery log: {delivered.count() / elapsed:,.0f}/s "
        f"({delivered.count()} delivered in {elapsed:.1f} s, runtime saw {Sink.received})"
    )

    # Only the cancel is timed: the ids are what the table's form would post.
    ids = list(
        workspace.executions.exclude(status__in=TERMINAL_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    started = time.perf_counter()
    cancelled, skipped = control.executions_cancel(workspace=workspace, ids=ids)
    elapsed = time.perf_counter() - started
    print(
        f"bulk cancel of {len(ids)} unfinished executions: {cancelled / elapsed:,.0f}/s "
        f"({cancelled} cancelled, {skipped} skipped in {elapsed:.2f} s)"
    )
    server.shutdown()
    cleanup()
    print_end()


def cleanup() -> None:
    """Remove the bench workspace and only its own queue rows."""
    from django_tasks_db.models import DBTaskResult

    from agents.models import Workspace
    from executions.models import Execution

    ids = [
        str(pk)
        for pk in Execution.objects.filter(workspace__slug="bench-dispatch").values_list(
            "pk", flat=True
        )
    ]
    for start in range(0, len(ids), 500):
        DBTaskResult.objects.filter(args_kwargs__args__0__in=ids[start : start + 500]).delete()
    Workspace.objects.filter(slug="bench-dispatch").delete()


if __name__ == "__main__":
    main()
