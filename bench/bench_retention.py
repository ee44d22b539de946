"""Retention under load (issue 19, "Retention"): deleting a large past-retention data set
with `manage.py apply_retention` while, in other processes, runs are ingested through
the JSON API at a steady rate and the executions table page is loaded. Prints the total
deletion time, rows deleted per second, the longest single batch (the issue's budget:
nothing blocks more than 1 s), and the worst and p99 ingestion and table latencies
before and during the deletion; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_retentionbench \
        .venv/bin/python bench/bench_retention.py [--executions 1000000] \
        [--steps-per-execution 10] [--retention-days 7] [--rate 4] [--no-load]

It loads the data set itself with `manage.py load_bench --reset` into the workspace
`bench` (the deletion is destructive, so every run needs a fresh load; `--no-load`
reuses one already there), sets the workspace's `retention_days` (the reference set
spans 90 days, so 7 puts about 90% of it past retention; runs with corrections, notes
or pins stay, as by default), and runs the real command in its own process.

Each load process is this script again (`--worker ingest|table`), with Django's test
client in-process (the real middleware, views and API, no HTTP server): separate
processes, so the latencies are not inflated by one Python's GIL. PostgreSQL
connections: one per process, 4 in all.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import percentile, print_end, print_start  # noqa: E402

PYTHON = sys.executable
WORKSPACE = "bench"


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    from bench.common import setup

    setup()


def worker(kind: str, stop_file: Path, rate: float) -> None:
    """Runs one load until `stop_file` exists; prints one JSON line per request:
    [wall clock at start, latency in ms, HTTP status]."""
    _django()
    from django.test import Client

    from bench.common import api_key, bench_workspace, logged_in_client, member

    workspace = bench_workspace(WORKSPACE)
    interval = 1 / rate
    if kind == "ingest":
        client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key(workspace, name='retention bench')}")

        def calls(i):
            # One run: created, then ten steps appended, as an agent would.
            yield lambda: client.post(
                "/api/v1/executions",
                {"agent": "retention-bench:v1", "input": {"n": i}},
                content_type="application/json",
            )
            run_id = last["response"].json()["execution_id"]
            steps = [
                {"span_id": f"s{n}", "sequence": n, "kind": "thought", "name": f"step {n}"}
                for n in range(10)
            ]
            yield lambda: client.post(
                f"/api/v1/executions/{run_id}/steps",
                {"steps": steps},
                content_type="application/json",
            )
    else:
        client = logged_in_client(member(workspace))
        client.get("/executions/")  # picks the workspace into the (cookie) session

        def calls(i):
            yield lambda: client.get("/executions/")

    last = {}
    next_at = time.perf_counter()
    i = 0
    while not stop_file.exists():
        for call in calls(i):
            began_wall, began = time.time(), time.perf_counter()
            last["response"] = response = call()
            took = (time.perf_counter() - began) * 1000
            print(json.dumps([began_wall, round(took, 2), response.status_code]), flush=True)
        i += 1
        # A steady rate: a slow answer is not made up for by a burst afterwards.
        next_at = max(next_at + interval, time.perf_counter())
        time.sleep(max(0.0, next_at - time.perf_counter()))


def summary(name: str, rows: list, since: float, until: float) -> str:
    times = sorted(took for at, took, _ in rows if since <= at <= until)
    bad = sum(1 for at, _, status in rows if since <= at <= until and status >= 400)
    if not times:
        return f"  {name:<34} no requests"
    return (
        f"  {name:<34} n={len(times):<5} median {percentile(times, 50):7.1f} ms  "
        f"p99 {percentile(times, 99):7.1f} ms  worst {times[-1]:7.1f} ms  errors {bad}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--steps-per-execution", type=int, default=10)
    parser.add_argument("--retention-days", type=int, default=7)
    parser.add_argument(
        "--rate", type=float, default=4, help="ingested runs (and table loads) per second"
    )
    parser.add_argument(
        "--baseline", type=float, default=15, help="seconds of load before deleting"
    )
    parser.add_argument("--no-load", action="store_true", help="reuse the data set already loaded")
    parser.add_argument(
        "--seconds",
        type=float,
        help="stop deleting after this long (apply_retention --budget-seconds): a measured "
        "part of a deletion too long for the session; default: until done",
    )
    parser.add_argument("--worker", choices=["ingest", "table"], help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.stop_file), args.rate)
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("This benchmark measures PostgreSQL: set DATABASE_URL=postgres://...")

    print_start("Retention under load (issue 19)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONUNBUFFERED": "1"}
    manage = [PYTHON, str(ROOT / "manage.py")]
    if not args.no_load:
        began = time.perf_counter()
        subprocess.run(
            [
                *manage,
                "load_bench",
                "--executions",
                str(args.executions),
                "--steps-per-execution",
                str(args.steps_per_execution),
                "--reset",
                "--workspace",
                WORKSPACE,
            ],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"loaded {args.executions:,} runs x {args.steps_per_execution} steps "
            f"in {time.perf_counter() - began:.0f} s"
        )

    _django()
    from agents.models import Workspace
    from executions.models import Execution, Step

    workspace = Workspace.objects.get(slug=WORKSPACE)
    Workspace.objects.filter(pk=workspace.pk).update(retention_days=args.retention_days)
    runs_before = Execution.objects.filter(workspace=workspace).count()
    steps_before = Step.objects.filter(execution__workspace=workspace).count()
    print(
        f"workspace {WORKSPACE}: {runs_before:,} runs, {steps_before:,} steps; "
        f"retention_days={args.retention_days}"
    )
    dry = subprocess.run(
        [*manage, "apply_retention", "--dry-run", "--workspace", WORKSPACE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"dry run: {dry}")
    from django.db import connection

    connection.close()  # the main process holds no connection while measuring

    stop_file = Path(f"/tmp/bench_retention_stop_{os.getpid()}")
    stop_file.unlink(missing_ok=True)
    workers = {
        kind: subprocess.Popen(
            [
                PYTHON,
                __file__,
                "--worker",
                kind,
                "--stop-file",
                str(stop_file),
                "--rate",
                str(args.rate),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for kind in ("ingest", "table")
    }
    time.sleep(args.baseline)
    deletion_began = time.time()
    began = time.perf_counter()
    budget = ["--budget-seconds", str(args.seconds)] if args.seconds else []
    result = subprocess.run(
        [*manage, "apply_retention", "--workspace", WORKSPACE, *budget],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    deletion_seconds = time.perf_counter() - began
    deletion_ended = time.time()
    time.sleep(5)
    stop_file.touch()
    rows = {}
    for kind, process in workers.items():
        out, _ = process.communicate(timeout=120)
        rows[kind] = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
    stop_file.unlink(missing_ok=True)

    _django()
    runs_after = Execution.objects.filter(workspace=workspace).count()
    steps_after = Step.objects.filter(execution__workspace=workspace).count()
    runs_gone = runs_before - runs_after
    steps_gone = steps_before - steps_after
    print(f"\napply_retention: {result.stdout.strip()}")
    print(
        f"deletion wall time {deletion_seconds:.1f} s: {runs_gone:,} runs "
        f"({runs_gone / deletion_seconds:,.0f}/s) and {steps_gone:,} steps "
        f"({steps_gone / deletion_seconds:,.0f}/s); "
        f"rows deleted {(runs_gone + steps_gone) / deletion_seconds:,.0f}/s"
    )
    print(
        f"left: {runs_after:,} runs and {steps_after:,} steps (with the ones ingested "
        "meanwhile, so the deleted counts above are net of them)"
    )
    first = min(at for kind_rows in rows.values() for at, _, _ in kind_rows)
    for label, since, until in (
        ("before deletion", first, deletion_began),
        ("during deletion", deletion_began, deletion_ended),
    ):
        print(f"\n{label} ({until - since:.0f} s):")
        print(summary("ingestion (POST run / POST steps)", rows["ingest"], since, until))
        print(summary("executions table (GET /executions/)", rows["table"], since, until))
    print_end()


if __name__ == "__main__":
    main()
