"""Database connections under mixed load (issue 11, part 3): ingestion, people browsing
and open SSE streams against a real uvicorn, for a bounded time. Prints the peak number
of connections PostgreSQL saw (pg_stat_activity), how many are left after the load
stops, and every answer by status class; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_connbench \
        .venv/bin/python bench/bench_connections.py [--workers 2] [--streams 30] \
        [--seconds 30] [--mode pool|persistent]

`--mode persistent` runs the old configuration (no pool, CONN_MAX_AGE=60) for
comparison. The database is dropped and created again: its name must hold "connbench".
"""

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import print_end, print_start  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/runboard_connbench"
PYTHON = str(Path(sys.executable))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, mode: str, pool_size: int) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="bench-only-not-a-secret",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        LOG_LEVEL="WARNING",
        # The production settings, with static files served without collectstatic.
        DJANGO_SETTINGS_MODULE="bench.settings",
        DB_POOL_MAX_SIZE=str(pool_size),
    )
    if mode == "persistent":
        env.update(DB_POOL="0", DB_CONN_MAX_AGE="60")
    else:
        env.update(DB_POOL="1")
    return env


def psql(database_url: str, database: str, sql: str) -> str:
    parsed = urlparse(database_url)
    command = ["psql", "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 5432)]
    command += ["-U", parsed.username or "postgres", "-d", database, "-tAq", "-c", sql]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def prepare(database_url: str, env: dict) -> tuple[str, str, str]:
    """A fresh database with a workspace, a member, an API key and one running
    execution; (raw key, session cookie, running execution id)."""
    name = urlparse(database_url).path.lstrip("/")
    if "connbench" not in name:
        raise SystemExit(f"Refusing to drop {name!r}: the bench database must be *connbench*.")
    psql(database_url, "postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(database_url, "postgres", f"CREATE DATABASE {name}")
    manage = [PYTHON, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from importlib import import_module\n"
        "from django.conf import settings\n"
        "from agents.models import ApiKey, Membership, Workspace\n"
        "from executions.models import Execution\n"
        "from tests.factories import ExecutionFactory, AgentVersionFactory\n"
        "ws = Workspace.objects.create(name='Bench', slug='bench')\n"
        "raw, prefix, hashed = ApiKey.generate()\n"
        "ApiKey.objects.create(workspace=ws, name='bench', prefix=prefix, hashed_key=hashed)\n"
        "user = get_user_model().objects.create_user('bench', password='x')\n"
        "Membership.objects.create(user=user, workspace=ws, role='admin')\n"
        "s = import_module(settings.SESSION_ENGINE).SessionStore()\n"
        "s['_auth_user_id'] = str(user.pk)\n"
        "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s['_auth_user_hash'] = user.get_session_auth_hash()\n"
        "s.save()\n"
        "v = AgentVersionFactory(agent__workspace=ws, agent__name='bot')\n"
        "ExecutionFactory.create_batch(200, agent_version=v)\n"
        "e = ExecutionFactory(agent_version=v, status='running')\n"
        "print(raw, s.session_key, e.pk)\n"
    )
    out = subprocess.run(
        [*manage, "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    raw, session, running = out.stdout.strip().splitlines()[-1].split()
    return raw, session, running


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = Counter()
        self.errors = Counter()

    def add(self, status: int | None, error: str = "") -> None:
        with self.lock:
            if status is None:
                self.errors[error[:80]] += 1
            else:
                self.statuses[status] += 1


def request(port, method, path, *, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


def ingester(port, key, deadline, tally):
    """A runtime reporting runs: create, five steps, complete."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rng = random.Random()
    while time.monotonic() < deadline:
        try:
            body = {"agent": "bot", "inputs": {"q": "x" * rng.randint(10, 200)}}
            status, data = request(
                port, "POST", "/api/v1/executions", body=json.dumps(body), headers=headers
            )
            tally.add(status)
            if status != 201:
                continue
            path = f"/api/v1/executions/{json.loads(data)['execution_id']}"
            steps = {"steps": [{"name": f"s{i}", "kind": "tool_call"} for i in range(5)]}
            status, _ = request(
                port, "POST", path + "/steps", body=json.dumps(steps), headers=headers
            )
            tally.add(status)
            done = {"status": "completed", "output": {"ok": True}}
            status, _ = request(port, "PATCH", path, body=json.dumps(done), headers=headers)
            tally.add(status)
        except OSError as exc:
            tally.add(None, type(exc).__name__)


def browser(port, session, key, deadline, tally):
    pages = ["/executions/", "/executions/?status=completed", "/agents/", "/overview/"]
    cookie = {"Cookie": f"sessionid={session}"}
    api = {"Authorization": f"Bearer {key}"}
    while time.monotonic() < deadline:
        try:
            tally.add(request(port, "GET", random.choice(pages), headers=cookie)[0])
            tally.add(request(port, "GET", "/api/v1/executions?page_size=20", headers=api)[0])
        except OSError as exc:
            tally.add(None, type(exc).__name__)


def streamer(port, key, execution_id, deadline, tally, opened):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(
            "GET",
            f"/api/v1/executions/{execution_id}/stream",
            headers={"Authorization": f"Bearer {key}"},
        )
        response = conn.getresponse()
        tally.add(response.status)
        if response.status != 200:
            response.read()
            return
        opened.append(1)
        while time.monotonic() < deadline:
            if not response.fp.readline():
                break
    except OSError as exc:
        tally.add(None, type(exc).__name__)
    finally:
        conn.close()


def connections_now(database_url: str) -> int:
    name = urlparse(database_url).path.lstrip("/")
    return int(
        psql(
            database_url,
            "postgres",
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--streams", type=int, default=30)
    parser.add_argument("--ingesters", type=int, default=4)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--mode", choices=["pool", "persistent"], default="pool")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    env = server_env(database_url, args.mode, args.pool_size)
    print_start("Database connections under ingestion, browsing and open streams (issue 11)")
    budget = args.workers * args.pool_size
    print(
        f"mode {args.mode}; {args.workers} uvicorn workers; {args.ingesters} ingesting, "
        f"{args.browsers} browsing, {args.streams} streams on one key for {args.seconds:.0f} s"
    )
    if args.mode == "pool":
        print(
            f"configured maximum: {args.workers} workers x DB_POOL_MAX_SIZE {args.pool_size}"
            f" = {budget} connections"
        )
    key, session, running = prepare(database_url, env)
    port = free_port()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            f"--workers={args.workers}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                request(port, "GET", "/api/v1/openapi.json", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        baseline = connections_now(database_url)
        tally, opened = Tally(), []
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=streamer, args=(port, key, running, deadline, tally, opened))
            for _ in range(args.streams)
        ]
        threads += [
            threading.Thread(target=ingester, args=(port, key, deadline, tally))
            for _ in range(args.ingesters)
        ]
        threads += [
            threading.Thread(target=browser, args=(port, session, key, deadline, tally))
            for _ in range(args.browsers)
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        peak, samples = 0, []
        while time.monotonic() < deadline:
            count = connections_now(database_url)
            samples.append(count)
            peak = max(peak, count)
            time.sleep(0.5)
        for thread in threads:
            thread.join(timeout=30)
        time.sleep(5)
        after = connections_now(database_url)
        fives = sum(n for status, n in tally.statuses.items() if status >= 500)
        print(f"\nconnections before load: {baseline}")
        print(f"peak connections during load: {peak} (median {sorted(samples)[len(samples) // 2]})")
        print(f"connections 5 s after the load stopped: {after}")
        print(f"streams held open: {len(opened)} of {args.streams}")
        print("answers: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items())))
        if tally.errors:
            print("client errors: " + ", ".join(f"{e}: {n}" for e, n in tally.errors.items()))
        print(f"5xx answers: {fives}")
        if args.mode == "pool":
            print(f"budget (workers x DB_POOL_MAX_SIZE): {budget}; peak - budget: {peak - budget}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        print_end()


if __name__ == "__main__":
    main()
