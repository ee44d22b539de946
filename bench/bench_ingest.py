"""Ingestion speed: OTLP protobuf batches and JSON API step batches, against PostgreSQL
and the server run as in production. Prints figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_ingestbench \
        .venv/bin/python bench/bench_ingest.py [--seconds 20] [--server gunicorn-sync]

Targets (issue 5): >= 5,000 spans/s with p99 request latency <= 500 ms for batches of
50 traces x 9 spans (~2 KB of input and output per span), every span queryable when
its request returns; >= 5,000 steps/s for JSON step batches of 100.

The database named in DATABASE_URL is dropped and created again. Traffic goes only
to 127.0.0.1; every loop is bounded in requests and in time.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import print_end, print_start  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/runboard_ingestbench"

SERVERS = {
    # Sync workers: ingestion is CPU-bound Python and blocking database calls, so one
    # process per request with no event loop in between is the fastest here.
    "gunicorn-sync": lambda port, workers: [
        ".venv/bin/gunicorn",
        "config.wsgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--worker-class=sync",
        "--keep-alive=30",
        "--timeout=120",
        "--log-level=warning",
    ],
    "gunicorn-uvicorn": lambda port, workers: [
        ".venv/bin/gunicorn",
        "config.asgi:application",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        "--worker-class=uvicorn.workers.UvicornWorker",
        "--timeout=120",
        "--log-level=warning",
    ],
    "uvicorn": lambda port, workers: [
        ".venv/bin/uvicorn",
        "config.asgi:application",
        f"--workers={workers}",
        "--host=127.0.0.1",
        f"--port={port}",
        "--log-level=warning",
        "--no-access-log",
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="bench-only-not-a-secret",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        DB_CONN_MAX_AGE="600",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
        MAX_REQUEST_BYTES=str(64 * 1024 * 1024),
    )
    return env


def prepare_database(database_url: str) -> str:
    """A fresh database with one workspace, an API key and a model price; the raw key."""
    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    if "ingestbench" not in name:
        raise SystemExit(f"Refusing to drop {name!r}: the bench database must be *ingestbench*.")
    admin = ["psql", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432)]
    admin += ["-U", parsed.username or "postgres", "-q", "-d", "postgres", "-c"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
    subprocess.run([*admin, f"CREATE DATABASE {name}"], check=True)
    env = server_env(database_url)
    subprocess.run(
        [".venv/bin/python", "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    setup = (
        "from decimal import Decimal\n"
        "from agents.models import ModelPrice, Workspace, ApiKey\n"
        "ws = Workspace.objects.create(name='Bench', slug='bench')\n"
        "raw, prefix, hashed = ApiKey.generate()\n"
        "ApiKey.objects.create(workspace=ws, name='bench', prefix=prefix, hashed_key=hashed)\n"
        "ModelPrice.objects.update_or_create(workspace=None, model='gpt-4o-mini', defaults=dict("
        "input_per_million=Decimal('0.15'), output_per_million=Decimal('0.6')))\n"
        "print(raw)\n"
    )
    out = subprocess.run(
        [".venv/bin/python", "manage.py", "shell", "-c", setup],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


# --- payloads ----------------------------------------------------------------------


WORDS = ["invoice", "total", "vendor", "amount", "date", "line", "item", "tax", "due"]
_POOL: dict[int, list[str]] = {}


def _text(rng: random.Random, size: int) -> str:
    """Text of `size` characters, from a pool so that building bodies stays cheap."""
    pool = _POOL.setdefault(size, [])
    if len(pool) < 64:
        words = []
        while sum(len(w) + 1 for w in words) < size:
            words.append(rng.choice(WORDS))
        pool.append(" ".join(words)[:size])
        return pool[-1]
    return rng.choice(pool)


def otlp_body(rng: random.Random, traces: int = 50) -> tuple[bytes, list[str]]:
    """One ExportTraceServiceRequest: `traces` agent runs of 9 spans each."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    def kv(key, value):
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [kv("service.name", "invoice-extractor"), kv("service.version", "v3")]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    trace_ids = []
    now = time.time_ns()
    for _ in range(traces):
        trace_id = rng.randbytes(16)
        trace_ids.append(trace_id.hex())
        ids = [rng.randbytes(8) for _ in range(9)]
        # root -> [plan (chain) -> [llm, tool, tool], llm, tool, answer (chain) -> [llm]]
        parents = [None, 0, 1, 1, 1, 0, 0, 0, 7]
        kinds = ["AGENT", "CHAIN", "LLM", "TOOL", "TOOL", "LLM", "TOOL", "CHAIN", "LLM"]
        for i in range(9):
            span = Span(
                trace_id=trace_id,
                span_id=ids[i],
                parent_span_id=ids[parents[i]] if parents[i] is not None else b"",
                name=f"{kinds[i].lower()} {i}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now + i * 1_000_000,
                end_time_unix_nano=now + (20 - i) * 1_000_000,
                status=Status(code=Status.STATUS_CODE_OK),
            )
            attrs = [
                kv("openinference.span.kind", kinds[i]),
                kv("input.value", json.dumps({"text": _text(rng, 1000)})),
                kv("input.mime_type", "application/json"),
                kv("output.value", _text(rng, 1000)),
            ]
            if kinds[i] == "LLM":
                attrs += [
                    kv("llm.model_name", "gpt-4o-mini"),
                    kv("llm.token_count.prompt", rng.randint(200, 2000)),
                    kv("llm.token_count.completion", rng.randint(20, 400)),
                ]
            elif kinds[i] == "TOOL":
                attrs.append(kv("tool.name", "lookup_vendor"))
            elif kinds[i] == "AGENT":
                attrs += [kv("agent.name", "invoice-extractor"), kv("session.id", "s-1")]
            span.attributes.extend(attrs)
            scope.spans.append(span)
    return request.SerializeToString(), trace_ids


def steps_body(rng: random.Random, start: int, count: int = 100) -> bytes:
    steps = []
    for i in range(count):
        kind = ("thought", "model_call", "tool_call")[i % 3]
        step = {
            "span_id": f"s{start + i}",
            "sequence": start + i,
            "kind": kind,
            "name": f"{kind} {start + i}",
            "input": {"text": _text(rng, 500)},
            "output": _text(rng, 500),
        }
        if kind == "model_call":
            step.update(model="gpt-4o-mini", prompt_tokens=500, completion_tokens=80)
        steps.append(step)
    return json.dumps({"steps": steps}).encode()


# --- load --------------------------------------------------------------------------


class Load:
    """Client threads posting pre-built bodies over keep-alive connections."""

    def __init__(self, port, key, bodies, path_for, *, threads, seconds, max_requests, check):
        self.port, self.key, self.bodies, self.path_for = port, key, bodies, path_for
        self.threads, self.seconds, self.max_requests = threads, seconds, max_requests
        self.check = check
        self.latencies: list[float] = []
        self.ok_meta: list = []  # what each request that was answered 2xx sent
        self.errors: list[str] = []
        self.next = 0
        self.lock = threading.Lock()
        self.unqueryable = 0
        self.checked = 0

    def take(self):
        with self.lock:
            if self.next >= self.max_requests or time.monotonic() > self.deadline:
                return None
            index = self.next
            self.next += 1
            return index

    def worker(self, content_type):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        checker = self.check() if self.check else None
        while (index := self.take()) is not None:
            body, meta = self.bodies[index % len(self.bodies)]
            started = time.perf_counter()
            try:
                conn.request(
                    "POST",
                    self.path_for(index, meta),
                    body=body,
                    headers={"Authorization": f"Bearer {self.key}", "Content-Type": content_type},
                )
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                continue
            elapsed = time.perf_counter() - started
            if response.status >= 300:
                self.errors.append(f"{response.status} {payload[:200]!r}")
                continue
            with self.lock:
                self.latencies.append(elapsed)
                self.ok_meta.append(meta)
            if checker is not None and index % 10 == 0:
                missing = checker(meta)
                with self.lock:
                    self.checked += 1
                    self.unqueryable += missing
        conn.close()

    def run(self, content_type):
        self.deadline = time.monotonic() + self.seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=self.worker, args=(content_type,)) for _ in range(self.threads)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(title, units, per_request, load, wall, stored):
    """`stored`: how many of the units the answered requests sent are in the database
    at the end, counted there; the rate is that count over the wall time."""
    done = len(load.latencies)
    sent = done * per_request
    rate = stored / wall if wall else 0
    print(f"\n{title}")
    print(f"  requests ok      {done}  (errors {len(load.errors)})")
    print(f"  stored           {stored:,} {units} of {sent:,} sent in answered requests")
    if stored != sent:
        print(f"  MISSING          {sent - stored:,} {units} answered 2xx but not stored")
    print(f"  throughput       {rate:,.0f} {units}/s stored over {wall:.1f} s")
    if done:
        ms = [v * 1000 for v in load.latencies]
        print(
            f"  latency ms       p50 {percentile(ms, 50):.0f}  p95 {percentile(ms, 95):.0f}  "
            f"p99 {percentile(ms, 99):.0f}  max {max(ms):.0f}  mean {statistics.mean(ms):.0f}"
        )
    for error in load.errors[:3]:
        print(f"  error: {error}")
    return rate


def wait_ready(port, key, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("The server exited during start-up.")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            headers = {"Authorization": f"Bearer {key}"}
            conn.request("GET", "/api/v1/executions?limit=1", headers=headers)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("The server did not answer within a minute.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--server", choices=sorted(SERVERS), default="gunicorn-sync")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--threads", type=int, default=3, help="client connections (one per worker)"
    )
    parser.add_argument("--seconds", type=float, default=20, help="per phase")
    parser.add_argument("--max-requests", type=int, default=2000, help="per phase")
    parser.add_argument("--bodies", type=int, default=250, help="distinct OTLP bodies")
    parser.add_argument("--skip-otlp", action="store_true")
    parser.add_argument("--skip-steps", action="store_true")
    args = parser.parse_args()

    import psycopg

    print_start("Ingestion through a real server (issue 5)")
    key = prepare_database(args.database_url)
    port = args.port or free_port()
    command = SERVERS[args.server](port, args.workers)
    print(f"server: {' '.join(command)}")
    proc = subprocess.Popen(command, cwd=ROOT, env=server_env(args.database_url))
    rng = random.Random(5)
    try:
        wait_ready(port, key, proc)

        if not args.skip_otlp:
            count = min(args.max_requests, args.bodies)
            print(f"building {count} OTLP bodies of 50 traces x 9 spans ...")
            bodies = [otlp_body(rng) for _ in range(count)]
            print(f"  body size {len(bodies[0][0]) / 1024:.0f} KiB (protobuf, uncompressed)")

            def checker():
                conn = psycopg.connect(args.database_url, autocommit=True)

                def missing(trace_ids):
                    # Right after the response: every span of the request is readable.
                    row = conn.execute(
                        "SELECT count(*), coalesce(sum(e.step_count), 0) FROM "
                        "executions_execution e WHERE e.trace_id = ANY(%s)",
                        [trace_ids],
                    ).fetchone()
                    stored = conn.execute(
                        "SELECT count(*) FROM executions_step s JOIN executions_execution e "
                        "ON s.execution_id = e.id WHERE e.trace_id = ANY(%s)",
                        [trace_ids],
                    ).fetchone()[0]
                    return (len(trace_ids) - row[0]) + (len(trace_ids) * 8 - stored)

                return missing

            # Warm-up: every worker imports, connects and fills its caches.
            Load(
                port,
                key,
                [otlp_body(rng) for _ in range(4)],
                lambda i, m: "/v1/traces",
                threads=2,
                seconds=10,
                max_requests=4,
                check=None,
            ).run("application/x-protobuf")
            # Distinct trace ids per request: a request body is never sent twice.
            load = Load(
                port,
                key,
                bodies,
                lambda i, m: "/v1/traces",
                threads=args.threads,
                seconds=args.seconds,
                max_requests=len(bodies),
                check=checker,
            )
            wall = load.run("application/x-protobuf")
            trace_ids = [t for meta in load.ok_meta for t in meta]
            with psycopg.connect(args.database_url, autocommit=True) as db:
                # A trace's root span is its execution; the other 8 are its steps.
                stored = db.execute(
                    "SELECT count(*) FROM executions_execution WHERE trace_id = ANY(%s)",
                    [trace_ids],
                ).fetchone()[0]
                stored += db.execute(
                    "SELECT count(*) FROM executions_step s JOIN executions_execution e "
                    "ON s.execution_id = e.id WHERE e.trace_id = ANY(%s)",
                    [trace_ids],
                ).fetchone()[0]
            report(
                "OTLP protobuf, 50 traces x 9 spans per request", "spans", 450, load, wall, stored
            )
            print(
                f"  queryable check  every 10th request read back right after its response: "
                f"{load.checked} checked, {load.unqueryable} spans or executions missing"
            )

        if not args.skip_steps:
            executions = []
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(40):
                conn.request(
                    "POST",
                    "/api/v1/executions",
                    body=json.dumps({"agent": "invoice-extractor:v3", "input": {"n": i}}),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                executions.append(json.loads(conn.getresponse().read())["execution_id"])
            conn.close()
            batches = args.max_requests
            print(f"building step bodies for {len(executions)} executions ...")
            # Each request appends the next 100 steps of one execution.
            bodies = [
                (steps_body(rng, (i // len(executions)) * 100), executions[i % len(executions)])
                for i in range(min(batches, 1200))
            ]
            load = Load(
                port,
                key,
                bodies,
                lambda i, execution_id: f"/api/v1/executions/{execution_id}/steps",
                threads=args.threads,
                seconds=args.seconds,
                max_requests=len(bodies),
                check=None,
            )
            wall = load.run("application/json")
            # Each answered request added 100 steps of one execution, under its own
            # sequence numbers; count what is there at the end.
            with psycopg.connect(args.database_url, autocommit=True) as db:
                stored = db.execute(
                    "SELECT count(*) FROM executions_step WHERE execution_id::text = ANY(%s)",
                    [[str(e) for e in executions]],
                ).fetchone()[0]
            report("JSON API steps, batches of 100", "steps", 100, load, wall, stored)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    print_end()


if __name__ == "__main__":
    main()
