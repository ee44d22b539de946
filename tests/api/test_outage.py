"""A database restart loses no OTLP data (issue 11, part 4).

A private PostgreSQL cluster (initdb as the postgres user, in /tmp, on its own port)
serves a real uvicorn; the OpenTelemetry SDK's own OTLP/HTTP exporter sends batches;
the cluster is stopped for a few seconds and started again. While it is away every
door answers 503 with Retry-After in its own format, and the exporter's batches all
arrive once it is back. Needs PostgreSQL's server binaries and root (to run them as
postgres); it does not use the suite's database, so it runs on either.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 55112
BASE_DIR = Path(settings.BASE_DIR)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists() or os.geteuid() != 0 or not shutil.which("runuser"),
        reason="needs PostgreSQL 15's server binaries and root to run them as postgres",
    ),
]


def as_postgres(*command, check=True):
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)],
        check=check,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Cluster:
    def __init__(self, data: Path, port: int):
        self.data, self.port = data, port

    def start(self):
        as_postgres(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-w",
            "-l",
            self.data / "server.log",
            "-o",
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode="fast"):
        as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-m", mode, "stop", check=False)

    def psql(self, sql: str, database="postgres") -> str:
        command = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return subprocess.run(
            [*command, "-d", database, "-tAq", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()


@pytest.fixture
def cluster():
    data = Path(tempfile.mkdtemp(prefix="runboard-outage-", dir="/tmp"))
    shutil.chown(data, "postgres", "postgres")
    as_postgres(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    cluster = Cluster(data, PORT)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(cluster):
    """uvicorn on the private cluster; (base URL, raw API key)."""
    cluster.psql("CREATE DATABASE runboard_outage")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{PORT}/runboard_outage",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "tests-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "ERROR",
        # A short wait for a connection keeps each 503 quick while the database is away.
        "DB_POOL_TIMEOUT": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    made = subprocess.run(
        [*manage, "shell", "--no-imports", "-c",
         "from agents.models import ApiKey, Workspace\n"
         "ws = Workspace.objects.create(name='Outage', slug='outage')\n"
         "raw, prefix, hashed = ApiKey.generate()\n"
         "ApiKey.objects.create(workspace=ws, name='otel', prefix=prefix, hashed_key=hashed)\n"
         "print(raw)"],
        cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=BASE_DIR, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", key
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def call(base, method, path, body=None, headers=None):
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def send_traces(provider, tracer, names) -> set[str]:
    trace_ids = set()
    for name in names:
        with tracer.start_as_current_span(name) as root:
            trace_ids.add(format(root.get_span_context().trace_id, "032x"))
            with tracer.start_as_current_span("gen_ai.chat") as child:
                child.set_attribute("gen_ai.request.model", "gpt-4o-mini")
    return trace_ids


def test_otlp_batches_sent_during_a_database_restart_all_arrive(cluster, server):
    from google.rpc.status_pb2 import Status as RpcStatus
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    base, key = server
    auth = {"Authorization": f"Bearer {key}"}
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers=auth, timeout=40)
    provider = TracerProvider(resource=Resource.create({"service.name": "outage-bot"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    tracer = provider.get_tracer("tests")

    sent = send_traces(provider, tracer, [f"before-{i}" for i in range(5)])
    assert provider.force_flush(30_000)

    cluster.stop()
    try:
        # Every door says "retry", each in its own format.
        status, headers, body = call(
            base, "POST", "/v1/traces", b"", {**auth, "Content-Type": "application/x-protobuf"}
        )
        assert (status, headers["retry-after"]) == (503, "2")
        assert headers["content-type"] == "application/x-protobuf"
        rpc = RpcStatus.FromString(body)
        assert rpc.code == 14 and "database cannot be reached" in rpc.message
        status, headers, body = call(base, "GET", "/api/v1/executions", headers=auth)
        assert status == 503 and headers["retry-after"] == "2"
        assert "database cannot be reached" in json.loads(body)["detail"]
        status, headers, body = call(
            base, "GET", "/executions/", headers={"Cookie": "sessionid=" + "a" * 32}
        )
        assert status == 503 and b"unavailable" in body

        # The exporter's batches while the database is away: retried, not dropped.
        during: set[str] = set()
        flushed = []

        def export_during_outage():
            during.update(send_traces(provider, tracer, [f"during-{i}" for i in range(5)]))
            flushed.append(provider.force_flush(60_000))

        exporting = threading.Thread(target=export_during_outage)
        exporting.start()
        time.sleep(4)
    finally:
        cluster.start()
    exporting.join(timeout=90)
    assert flushed == [True]

    sent |= during
    provider.shutdown()
    stored = cluster.psql(
        "SELECT trace_id FROM executions_execution", database="runboard_outage"
    ).split()
    assert sorted(stored) == sorted(sent) and len(sent) == 10
