"""1,000 open live streams on one web process: LISTEN/NOTIFY against the 0.5 s poll.

    .venv/bin/python bench/bench_streams.py [--streams 1000] [--runs 50] [--rounds 20]

For each mode (notify, then poll as the baseline, in the same run) it starts one
uvicorn process on a private PostgreSQL cluster, opens --streams event streams on
the detail pages of --runs running executions, and prints:
- database transactions per second while every stream is idle (pg_stat_database);
- step recorded -> event received: a step is recorded through the API (timed from
  its 201, i.e. after commit) and every stream of that run reports when the card
  arrived; p50, p95 and p99 over all of them.
Starts and stops its own cluster and process; traffic only to 127.0.0.1; bounded.
Prints figures; asserts nothing.
"""

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import print_end, print_start  # noqa: E402
from tests.scale.stack import (  # noqa: E402
    Browser,
    Cluster,
    WebProcess,
    _workdir,
    app_env,
    create_execution,
    prepare,
)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def transactions(cluster, dbname) -> int:
    return cluster.sql(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", dbname
    )[0][0]


async def open_stream(port, path, cookie, seen, index, opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    buffer = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            if b"retry:" in buffer and index not in opened:
                opened.add(index)
            while b"mark-" in buffer:
                at = buffer.index(b"mark-") + 5
                end = at
                while end < len(buffer) and buffer[end : end + 1].isdigit():
                    end += 1
                if end == len(buffer):
                    break
                seen.setdefault((index, int(buffer[at:end])), time.perf_counter())
                buffer = buffer[end:]
            buffer = buffer[-64:]
    finally:
        writer.close()


async def measure(web, cluster, dbname, key, cookie, runs, streams, rounds, idle_seconds):
    seen: dict = {}
    opened: set = set()
    tasks = [
        asyncio.create_task(
            open_stream(
                web.port, f"/executions/{runs[i % len(runs)]}/stream", cookie, seen, i, opened
            )
        )
        for i in range(streams)
    ]
    deadline = time.monotonic() + 180
    while len(opened) < streams and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the first looks and the listener's wake-up settle
    before = await asyncio.to_thread(transactions, cluster, dbname)
    await asyncio.sleep(idle_seconds)
    after = await asyncio.to_thread(transactions, cluster, dbname)
    idle_rate = (after - before - 1) / idle_seconds  # less the reading query itself

    recorded = {}
    session = requests.Session()
    for n in range(rounds):
        run = runs[n % len(runs)]

        def post(n=n, run=run):
            response = session.post(
                f"{web.url}/api/v1/executions/{run}/steps",
                json={"steps": [{"sequence": n + 1, "kind": "tool_call", "name": f"mark-{n}x"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            return response.status_code, time.perf_counter()

        status, done = await asyncio.to_thread(post)
        if status < 300:
            recorded[n] = done
        await asyncio.sleep(0.3)
    await asyncio.sleep(5)  # let the last events arrive (a poll may be behind)
    latencies = []
    expected = 0
    for n, at in recorded.items():
        watchers = [i for i in range(streams) if i % len(runs) == n % len(runs)]
        expected += len(watchers)
        latencies += [(seen[(i, n)] - at) * 1000 for i in watchers if (i, n) in seen]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(opened), idle_rate, latencies, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50, help="running executions watched")
    parser.add_argument("--rounds", type=int, default=20, help="steps recorded per mode")
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--modes", default="notify,poll")
    args = parser.parse_args()
    if not 1 <= args.streams <= 5000 or not 1 <= args.runs <= args.streams:
        sys.exit("--streams must be 1..5000 and --runs 1..streams")
    modes = args.modes.split(",")
    if set(modes) - {"notify", "poll"}:
        sys.exit(f"--modes: notify and/or poll, got {args.modes!r}")

    print_start(f"{args.streams} open live streams on one web process: NOTIFY vs poll")
    workdir = _workdir("rb_streams_")
    cluster = Cluster(workdir / "pg").init().start()
    try:
        cluster.sql("CREATE DATABASE runboard")
        base = app_env(
            cluster.url("runboard"),
            MAX_STREAMS_PER_USER=str(args.streams * 2),
            DB_POOL_MAX_SIZE="8",
        )
        key = prepare(base)
        for mode in modes:
            env = {**base, "RUNBOARD_NOTIFY": "1" if mode == "notify" else "0"}
            web = WebProcess(env).start()
            try:
                runs = [create_execution(web.url, key, "streams:v1") for _ in range(args.runs)]
                for run in runs:  # running, so the streams stay open
                    requests.post(
                        f"{web.url}/api/v1/executions/{run}/steps",
                        json={"steps": [{"sequence": 0, "kind": "thought", "name": "start"}]},
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=60,
                    )
                browser = Browser(web.url)
                browser.login()
                cookie = "; ".join(f"{k}={v}" for k, v in browser.session.cookies.items())
                opened, idle, latencies, expected = asyncio.run(
                    measure(
                        web, cluster, "runboard", key, cookie, runs, args.streams,
                        args.rounds, args.idle_seconds,
                    )
                )  # fmt: skip
                line = f"{mode:6}  {opened} streams open  idle {idle:7.1f} transactions/s"
                if latencies:
                    line += (
                        f"  step -> event p50 {statistics.median(latencies):6.0f} ms"
                        f"  p95 {percentile(latencies, 95):6.0f} ms"
                        f"  p99 {percentile(latencies, 99):6.0f} ms"
                        f"  ({len(latencies)} of {expected} events received)"
                    )
                else:
                    line += f"  no events received of {expected}"
                print(line, flush=True)
            finally:
                web.stop()
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_end()


if __name__ == "__main__":
    main()
