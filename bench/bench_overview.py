"""Overview page speed and percentile accuracy on the reference data set. Prints
figures; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/bench_overview.py [--runs 10]

Budget (issue 17), on 1,000,000 executions in PostgreSQL: the full page for 90 days
over all agents <= 150 ms server time at the median, each htmx region <= 100 ms, the
24 h view <= 80 ms. Server time is measured in process through Django's test client
(middleware, queries, view, templates; no network, no browser).

Then, for 90 days, 24 hours and one agent, p50/p95/p99 of the duration read from the
rollups' histogram next to the exact value from the executions (percentile_disc over
the same runs), and the relative error (the histogram promises <= 4.4%). Also the
rollup tables' sizes and the time to rebuild them from scratch (--rebuild).
"""

import argparse
import os
import statistics
import time
from zoneinfo import ZoneInfo

from common import setup  # bench/ is on sys.path when run as a script

setup()

from common import (  # noqa: E402
    bench_workspace,
    logged_in_client,
    member,
    print_end,
    print_start,
)
from django.db import connection  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.utils import timezone  # noqa: E402

from executions.overview import rollups, selectors, step_rollups  # noqa: E402
from executions.overview.query import parse  # noqa: E402
from executions.overview.step_rollups import tables as step_tables  # noqa: E402

STEP_TABLES = step_tables()
NY = "America/New_York"
CASES = [
    ("full page, 90 days", "range=90d", False, 150),
    ("full page, 30 days", "range=30d", False, None),
    ("full page, 7 days", "range=7d", False, None),
    ("full page, 24 hours", "range=24h", False, 80),
    ("full page, last hour", "range=1h", False, None),
    ("region timeline, 90 days (htmx)", "range=90d&region=timeline", True, 100),
    ("region ranked, 90 days (htmx)", "range=90d&region=ranked", True, 100),
    ("region errors, 90 days (htmx)", "range=90d&region=errors", True, 100),
    ("region calls, 90 days (htmx)", "range=90d&region=calls", True, 100),
    ("region spikes, 90 days (htmx)", "range=90d&region=spikes", True, 100),
    ("region timeline, 24 hours (htmx)", "range=24h&region=timeline", True, 100),
    ("region ranked, 24 hours (htmx)", "range=24h&region=ranked", True, 100),
    ("region errors, 24 hours (htmx)", "range=24h&region=errors", True, 100),
    ("region calls, 24 hours (htmx)", "range=24h&region=calls", True, 100),
    ("region spikes, 24 hours (htmx)", "range=24h&region=spikes", True, 100),
    ("full page, 90 days, one agent", "range=90d&agent={agent}", False, None),
    ("region calls, 90 days, one agent (htmx)", "range=90d&agent={agent}&region=calls", True, 100),
    ("region calls, 90 days, source=api (htmx)", "range=90d&source=api&region=calls", True, 100),
    (f"full page, 90 days, {NY}", "range=90d&tz=ny", False, 150),
    (f"full page, 30 days, {NY}", "range=30d&tz=ny", False, None),
    (f"full page, 24 hours, {NY}", "range=24h&tz=ny", False, 80),
    ("CSV runs by status, 90 days", "chart=runs&range=90d", False, None),
]


def _backend_cpu() -> float | None:
    """CPU seconds of this connection's PostgreSQL backend, when it runs on this machine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_cpu(name: str, call, *, runs: int, budget_ms: float | None) -> None:
    """Wall time (judged against the budget) and CPU time (this process plus its
    database backend): on a machine shared with other busy processes the wall time
    includes waiting for a core, the CPU time is what it comes down to without."""
    for _ in range(3):
        call()
    walls, cpus = [], []
    for _ in range(runs):
        backend = _backend_cpu()
        began, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - began) * 1000)
        spent = time.process_time() - cpu
        after = _backend_cpu()
        if backend is not None and after is not None:
            spent += after - backend
        cpus.append(spent * 1000)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    verdict = ""
    if budget_ms is not None:
        verdict = "   ok" if wall <= budget_ms else f"   OVER {budget_ms:g} ms"
        if wall > budget_ms and cpu <= budget_ms:
            verdict += " (CPU within budget: the rest was waiting for a core)"
    print(
        f"{name:<40} n={runs:<3} wall median {wall:8.1f} ms   CPU median {cpu:7.1f} ms{verdict}",
        flush=True,
    )


def exact_percentiles(workspace, start, end, agent=None) -> dict[float, float]:
    sql = (
        "SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) "
        "FROM executions_execution WHERE workspace_id = %s AND created_at >= %s "
        "AND created_at < %s AND duration_ms IS NOT NULL"
    )
    params = [workspace.pk, start, end]
    if agent:
        sql += " AND agent_name = %s"
        params.append(agent)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = cursor.fetchone()[0]
    return dict(zip((0.5, 0.95, 0.99), values, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true", help="also time rebuild_rollups")
    args = parser.parse_args()
    print_start("Overview (issue 17) on the reference data set")
    workspace = bench_workspace()
    client = logged_in_client(member(workspace))
    agent = selectors.ranked_lists(parse(QueryDict("range=90d"), workspace=workspace))[0][
        0
    ].agent_name
    with connection.cursor() as cursor:
        for table in (*(t.table for t in rollups.TARGETS.values()), *STEP_TABLES):
            cursor.execute(
                f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{table}')) FROM {table}"
            )
            rows, size = cursor.fetchone()
            print(f"{table}: {rows:,} rows, {size}")
    print("\nServer time (median of --runs, after 3 warm-up requests):")
    for name, query, htmx, budget in CASES:
        url = "/overview/export.csv" if query.startswith("chart=") else "/overview/"
        full = f"{url}?{query.format(agent=agent)}"
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        # The viewer's zone comes from the tz cookie (TimezoneMiddleware).
        zone = NY if "tz=ny" in full else "UTC"

        def call(full=full, headers=headers, zone=zone):
            client.cookies["tz"] = zone
            response = client.get(full, **headers)
            assert response.status_code == 200, (full, response.status_code)

        measure_cpu(name, call, runs=args.runs, budget_ms=budget)

    print("\nPercentiles of duration: histogram (rollups) vs exact (percentile_disc):")
    for label, params, zone in (
        ("90 days", "range=90d", "UTC"),
        ("24 hours", "range=24h", "UTC"),
        (f"90 days, agent {agent}", f"range=90d&agent={agent}", "UTC"),
        ("90 days, New York days", "range=90d", NY),
    ):
        with timezone.override(ZoneInfo(zone)):
            query = parse(QueryDict(params), workspace=workspace)
            totals = selectors.timeline(query).totals
        exact = exact_percentiles(workspace, query.start, query.end, query.agent)
        for q in (0.5, 0.95, 0.99):
            estimate, true = totals.percentiles[q], exact[q]
            error = abs(estimate - true) / true * 100 if true else 0.0
            print(
                f"  {label:<34} p{int(q * 100):<3} histogram {estimate:10.0f} ms   "
                f"exact {true:10.0f} ms   error {error:4.2f}%"
            )
    if args.rebuild:
        began = time.perf_counter()
        rollups.rebuild()
        step_rollups.rebuild()
        print(f"\nrebuild_rollups (every workspace): {time.perf_counter() - began:.1f} s")
    print_end()


if __name__ == "__main__":
    main()
