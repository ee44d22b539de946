"""One alert evaluator tick with 1,000 rules over the reference data set. Prints figures;
asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runboard_bench \
        .venv/bin/python bench/bench_alerts.py [--rules 1000] [--runs 10] [--workspace bench]

Budget (issue 18): 1,000 rules evaluated in under a second per tick. The rules are a
mix like a real workspace's: every metric, windows of 5 min to 24 h, scoped to the
whole workspace, one agent or one version, a fifth of them relative to their 7-day
baseline, with min runs and sustain. They have no channels, so the tick measures the
evaluation (reads, state machine, one bulk update of the rules, events), not delivery.
The bench's rules are removed at the end.
"""

import argparse
import random
import time
from datetime import timedelta
from decimal import Decimal

from common import setup  # bench/ is on sys.path when run as a script

setup()

from common import bench_workspace, count_queries, measure, print_end, print_start  # noqa: E402
from django.db.models import Count, Max  # noqa: E402

from agents.models import AgentVersion  # noqa: E402
from executions.alerts import evaluate  # noqa: E402
from executions.alerts.models import AlertRule, Metric  # noqa: E402
from executions.models import Execution  # noqa: E402

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


def make_rules(workspace, count: int) -> None:
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
        if scope < 0.5 and agents:
            rule.agent_name = rng.choice(agents)
        elif scope < 0.8 and versions:
            rule.agent_version_id = rng.choice(versions)
        if rng.random() < 0.2:
            rule.baseline_factor = Decimal("2")
        else:
            rule.threshold = Decimal(rng.choice([1, 5, 50, 500]))
        rules.append(rule)
    AlertRule.objects.bulk_create(rules, batch_size=500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workspace", default="bench")
    args = parser.parse_args()

    print_start(f"Alert evaluator: {args.rules} rules, one tick")
    workspace = bench_workspace(args.workspace)
    runs = Execution.objects.filter(workspace=workspace)
    latest = runs.aggregate(latest=Max("created_at"))["latest"]
    print(f"workspace {workspace.slug}: {runs.count():,} executions, the newest at {latest}")
    make_rules(workspace, args.rules)
    # The tick evaluates at the data set's newest run, so every window has runs in it
    # (the reference set ends when it was loaded).
    now = latest + timedelta(seconds=1)
    by_kind = AlertRule.objects.filter(workspace=workspace, name__startswith=PREFIX)
    print(
        f"rules: {by_kind.count()} ({by_kind.filter(baseline_factor__isnull=False).count()} "
        f"relative to the 7-day baseline), windows {WINDOWS} min"
    )
    try:
        queries = count_queries(lambda: evaluate.evaluate(now=now, workspace=workspace))
        print(f"queries per tick: {queries}")
        timing = measure(
            f"tick, {args.rules} rules",
            lambda: evaluate.evaluate(now=now, workspace=workspace),
            runs=args.runs,
            warmup=1,
            budget_ms=1000,
        )
        states = dict(by_kind.values_list("state").annotate(n=Count("id")).order_by())
        print(f"states after {args.runs + 2} ticks: {states}")
        print(f"median {timing.median:.0f} ms per tick")
        # On a shared machine the wall time includes waiting for a CPU; this process's
        # own CPU time per tick is the figure that compares between runs.
        began = time.process_time()
        for _ in range(3):
            evaluate.evaluate(now=now, workspace=workspace)
        print(f"python CPU per tick: {(time.process_time() - began) / 3 * 1000:.0f} ms")
    finally:
        AlertRule.objects.filter(workspace=workspace, name__startswith=PREFIX).delete()
        evaluate.firing_counts(workspace_ids={workspace.pk})
    print_end()


if __name__ == "__main__":
    main()
