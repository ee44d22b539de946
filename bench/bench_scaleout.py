"""Several web processes behind a real load balancer: 1, 2 and 4 Runboard processes
(uvicorn, one worker each) behind HAProxy, on a private PostgreSQL cluster of its own.
For each count it prints the ingestion rate (JSON step batches of 100 through the
proxy) and the table's latency read at the same time by a logged-in user.

    .venv/bin/python bench/bench_scaleout.py [--seconds 15] [--threads 4] [--counts 1,2,4]

Starts and stops its own cluster (as the postgres user when run as root), processes
and proxy; traffic goes only to 127.0.0.1; every loop is bounded in time. Prints
figures; asserts nothing. On a 2-core machine more processes cannot add CPU: the
figures say what the set-up costs and that it holds, not how far it scales.
"""

import argparse
import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_ingest import steps_body  # noqa: E402
from bench.common import print_end, print_start  # noqa: E402
from tests.scale.stack import (  # noqa: E402
    Browser,
    Cluster,
    HAProxy,
    WebProcess,
    _workdir,
    app_env,
    create_execution,
    prepare,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(count: int, env: dict, key: str, seconds: float, threads: int) -> None:
    webs = [WebProcess(env).start() for _ in range(count)]
    proxy = HAProxy([w.port for w in webs]).start()
    try:
        runs = [create_execution(proxy.url, key, "scaleout:v1") for _ in range(threads)]
        browser = Browser(proxy.url)
        browser.login()
        browser.get("/executions/")  # warm every process's first request
        rng = random.Random(count)
        body = steps_body(rng, 0, 100)
        stored, errors, table_ms = [0], [], []
        deadline = time.monotonic() + seconds
        lock = threading.Lock()

        def ingest(index: int) -> None:
            session = requests.Session()
            batch = 0
            while time.monotonic() < deadline:
                # Each request appends the next 100 steps (new sequence numbers).
                data = steps_body(rng, batch * 100, 100) if batch else body
                response = session.post(
                    f"{proxy.url}/api/v1/executions/{runs[index]}/steps",
                    data=data,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    timeout=60,
                )
                with lock:
                    if response.status_code < 300:
                        stored[0] += 100
                    else:
                        errors.append(f"{response.status_code} {response.text[:120]}")
                batch += 1

        def read_table() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                page = browser.get("/executions/?agent=scaleout")
                table_ms.append((time.perf_counter() - started) * 1000)
                if page.status_code != 200:
                    errors.append(f"table {page.status_code}")

        workers = [threading.Thread(target=ingest, args=(i,)) for i in range(threads)]
        workers.append(threading.Thread(target=read_table))
        started = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        wall = time.perf_counter() - started
        p50, p95 = statistics.median(table_ms), percentile(table_ms, 95)
        print(
            f"{count} process{'es' if count > 1 else '  '}  "
            f"ingestion {stored[0] / wall:8,.0f} steps/s  table p50 {p50:6.0f} ms  "
            f"p95 {p95:6.0f} ms  max {max(table_ms):6.0f} ms  "
            f"({len(table_ms)} reads, {len(errors)} errors)",
            flush=True,
        )
        for error in errors[:3]:
            print(f"    error: {error}")
    finally:
        proxy.stop()
        for web in webs:
            web.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--threads", type=int, default=4, help="ingestion client threads")
    parser.add_argument("--counts", default="1,2,4", help="web process counts to run")
    args = parser.parse_args()
    try:
        counts = [int(c) for c in args.counts.split(",")]
    except ValueError:
        sys.exit(f"--counts must be whole numbers separated by commas, got {args.counts!r}")
    if not 1 <= args.threads <= 64 or not 1 <= args.seconds <= 600:
        sys.exit("--threads must be 1..64 and --seconds 1..600")

    print_start("Web processes behind HAProxy: ingestion rate and table latency")
    workdir = _workdir("rb_scaleout_")
    cluster = Cluster(workdir / "pg").init().start()
    try:
        cluster.sql("CREATE DATABASE runboard")
        env = app_env(cluster.url("runboard"), DB_POOL_MAX_SIZE="6")
        key = prepare(env)
        print(f"{args.threads} ingestion threads, 1 table reader, {args.seconds:.0f} s per count")
        for count in counts:
            run(count, env, key, args.seconds, args.threads)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_end()


if __name__ == "__main__":
    main()
