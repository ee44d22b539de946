"""One alert evaluator tick with 1,000 rules over the reference data set. Prints figures;
asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/bench_alerts.py [--rules 1000] [--runs 10] [--workspace bench]

Budget (issue 18): 1,000 rules evaluated in under a second per tick. The rules are a
mix like a real workspace's: every metric, windows of 5 min to 24 h, scoped to the
whole workspace, one agent or one version, a fifth of them relative to their 7-day
baseline, with min runs and sustain. A second tick makes --view-share of them scoped
by saved views (VIEW_QUERIES: two read from the rollups, four from the runs). They
have no channels, so the tick measures the evaluation (reads, state machine, one bulk
update of the rules, events), not delivery. The bench's rules and views are removed at
the end.
"""

import argparse
import random
import time
from datetime import timedelta
from decimal import Decimal

from common import setup  # bench/ is on sys.path when run as a script

setup()

from common import (  # noqa: E402
    bench_workspace,
    count_queries,
    measure,
    member,
    print_end,
    print_start,
)
from django.db.models import Count, Max  # noqa: E402

from agents.models import AgentVersion  # noqa: E402
from executions.alerts import evaluate  # noqa: E402
from executions.alerts.models import AlertRule, Metric  # noqa: E402
from executions.models import Execution, SavedView  # noqa: E402

PREFIX = "bench-alert-"
WINDOWS = [5, 15, 60, 180, 1440]
METRICS = [
    Metric.RUN_COUNT,
    Metric.ERROR_RATE,
    Metric.DURATION_P95,
    Metric.COST_PER_RUN,
    Metric.TOTAL_COST,
    Metric.CREDITS_PER_RUN,
]
# A few of the metrics that read their own tables rather than the rollups.
OTHER_METRICS = [Metric.APPROVALS_WAITING, Metric.BUDGET_FLAGGED, Metric.CORRECTION_RATE]


# Saved views as scopes: the first two are rollup dimensions (read with every other
# rule's rollups), the others carry filters the rollups do not (read from the runs of
# the window and the baseline days, one query per view and window).
VIEW_QUERIES = [
    "status=failed&status=timed_out",
    "status=active",
    "min_cost=0.05",
    "min_duration=30",
    "q=timeout",
    "feedback=corrected",
]


def make_views(workspace) -> list[SavedView]:
    SavedView.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
    owner = member(workspace)
    return [
        SavedView.objects.create(workspace=workspace, owner=owner, name=f"{PREFIX}{i}", query=q)
        for i, q in enumerate(VIEW_QUERIES)
    ]


def make_rules(workspace, count: int, views: list | None = None, view_share: float = 0) -> None:
    AlertRule.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
    rng = random.Random(18)
    agents = sorted(set(Execution.objects.filter(workspace=workspace).values_list(
        "agent_name", flat=True
    ).order_by("agent_name").distinct()[:50]))  # fmt: skip
    versions = list(
        AgentVersion.objects.filter(agent__workspace=workspace).values_list("pk", flat=True)
    )
    rules = []
    for i in range(count):
        other = i % 20 == 0  # 5% read their own tables
        metric = rng.choice(OTHER_METRICS if other else METRICS)
        scope = rng.random()
        rule = AlertRule(
            workspace=workspace,
            name=f"{PREFIX}{i:04d}",
            metric=metric,
            window_minutes=rng.choice(WINDOWS),
            condition=rng.choice(["above", "below"]),
            min_runs=rng.choice([1, 5, 20]),
            sustain=rng.choice([1, 3, 5]),
        )
        if views and rng.random() < view_share:
            rule.saved_view = rng.choice(views)
        elif scope < 0.5 and agents:
            rule.agent_name = rng.choice(agents)
        elif scope < 0.8 and versions:
            rule.agent_version_id = rng.choice(versions)
        if rng.random() < 0.2:
            rule.baseline_factor = Decimal("2")
        else:
            rule.threshold = Decimal(rng.choice([1, 5, 50, 500]))
        rules.append(rule)
    AlertRule.objects.bulk_create(rules, batch_size=500)


def tick(workspace, now, runs: int, label: str) -> None:
    by_kind = AlertRule.objects.filter(workspace=workspace, name__startswith=PREFIX)
    relative = by_kind.filter(baseline_factor__isnull=False).count()
    print(
        f"{label}: {by_kind.count()} rules ({relative} "
        f"relative to the 7-day baseline, {by_kind.filter(saved_view__isnull=False).count()} "
        f"scoped by a saved view), windows {WINDOWS} min"
    )
    queries = count_queries(lambda: evaluate.evaluate(now=now, workspace=workspace))
    print(f"queries per tick: {queries}")
    timing = measure(
        f"tick, {label}",
        lambda: evaluate.evaluate(now=now, workspace=workspace),
        runs=runs,
        warmup=1,
        budget_ms=1000,
    )
    states = dict(by_kind.values_list("state").annotate(n=Count("id")).order_by())
    print(f"states after {runs + 2} ticks: {states}")
    print(f"median {timing.median:.0f} ms per tick")
    # On a shared machine the wall time includes waiting for a CPU; this process's
    # own CPU time per tick is the figure that compares between runs.
    began = time.process_time()
    for _ in range(3):
        evaluate.evaluate(now=now, workspace=workspace)
    print(f"python CPU per tick: {(time.process_time() - began) / 3 * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workspace", default="bench")
    parser.add_argument(
        "--view-share",
        type=float,
        default=0.05,
        help="share of rules scoped by a saved view in the second tick (0: skip it)",
    )
    args = parser.parse_args()

    print_start(f"Alert evaluator: {args.rules} rules, one tick")
    workspace = bench_workspace(args.workspace)
    runs = Execution.objects.filter(workspace=workspace)
    latest = runs.aggregate(latest=Max("created_at"))["latest"]
    print(f"workspace {workspace.slug}: {runs.count():,} executions, the newest at {latest}")
    # The tick evaluates at the data set's newest run, so every window has runs in it
    # (the reference set ends when it was loaded).
    now = latest + timedelta(seconds=1)
    try:
        make_rules(workspace, args.rules)
        tick(workspace, now, args.runs, f"{args.rules} rules")
        if args.view_share > 0:
            views = make_views(workspace)
            print(f"saved views: {VIEW_QUERIES}")
            make_rules(workspace, args.rules, views=views, view_share=args.view_share)
            tick(workspace, now, args.runs, f"{args.rules} rules, {args.view_share:.0%} by views")
    finally:
        AlertRule.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
        SavedView.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
        evaluate.firing_counts(workspace_ids={workspace.pk})
    print_end()


if __name__ == "__main__":
    main()
