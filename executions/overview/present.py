"""What each chart and list shows: its SVG, its numbers as table rows, its CSV.

One builder per chart, used by the page (SVG + table) and by the CSV download,
so the three can never disagree.

Over 500 lines on purpose: every chart's SVG, table rows and CSV sit side by side
with the drawing helpers they share, so one chart reads in one place.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.urls import reverse
from django.utils import timezone

from executions.models import Status

from . import charts, selectors
from .query import OverviewQuery

STATUS_LABELS = dict(Status.choices)
TOP_AGENTS = 6
OTHERS = "(other agents)"


@dataclass
class Cell:
    text: str
    href: str = ""
    number: bool = False
    svg: str = ""


@dataclass
class Chart:
    id: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    svg: str = ""
    note: str = ""
    legend: str = ""

    def csv_rows(self) -> list[list[str]]:
        return [self.columns, *([_csv_cell(c) for c in row] for row in self.rows)]


# Spreadsheets run a text cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(cell: Cell) -> str:
    if not cell.number and cell.text.startswith(FORMULA_STARTS):
        return "'" + cell.text
    return cell.text


@cache
def _table_path() -> str:
    return reverse("executions:list")


def table_url(query: OverviewQuery, start: datetime, end: datetime, **extra) -> str:
    return f"{_table_path()}?{query.table_params(start, end, **extra)}"


def bucket_label(query: OverviewQuery, start: datetime, short: bool = False) -> str:
    local = timezone.localtime(start, query.tz)
    if query.grain == "minute":
        return local.strftime("%H:%M")
    if query.grain == "hour":
        if short and query.range != "7d":
            return local.strftime("%H:%M")
        return local.strftime("%a %H:%M" if short else "%Y-%m-%d %H:%M")
    return local.strftime("%b %d" if short else "%Y-%m-%d")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 60_000:
        return f"{value / 60_000:.1f} min"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _money(value: Decimal) -> str:
    return f"${value:,.4f}"


def runs_chart(query: OverviewQuery, tl: selectors.Timeline) -> Chart:
    chart = Chart(
        "runs", "Runs by status", ["Time", "Runs", *(STATUS_LABELS[s] for s in tl.statuses)]
    )
    stacks = []
    for b in tl.buckets:
        label = bucket_label(query, b.start)
        stacks.append(
            [
                (
                    f"st-{s}",
                    charts.Mark(
                        b.statuses.get(s, 0),
                        table_url(query, b.start, b.end, status=s),
                        f"{label}: {b.statuses.get(s, 0):,} {STATUS_LABELS[s].lower()}",
                    ),
                )
                for s in tl.statuses
            ]
        )
        chart.rows.append(
            [
                Cell(label),
                Cell(f"{b.runs}", table_url(query, b.start, b.end), True),
                *(
                    Cell(
                        f"{b.statuses.get(s, 0)}", table_url(query, b.start, b.end, status=s), True
                    )
                    for s in tl.statuses
                ),
            ]
        )
    chart.svg = charts.stacked_bars(
        chart.title, [bucket_label(query, b.start, True) for b in tl.buckets], stacks
    )
    chart.legend = charts.legend([(f"st-{s}", STATUS_LABELS[s]) for s in tl.statuses])
    return chart


def error_chart(query: OverviewQuery, tl: selectors.Timeline) -> Chart:
    names = ", ".join(STATUS_LABELS[s].lower() for s in selectors.ERROR_STATUSES)
    chart = Chart(
        "errors",
        "Error rate",
        ["Time", "Errors", "Finished", "Error rate"],
        note=f"{names} over all finished runs",
    )
    marks = []
    for b in tl.buckets:
        label = bucket_label(query, b.start)
        errors_url = table_url(query, b.start, b.end, status=selectors.ERROR_STATUSES)
        rate = b.error_rate
        marks.append(
            None
            if rate is None
            else charts.Mark(
                rate * 100, errors_url, f"{label}: {_pct(rate)} ({b.errors:,} of {b.finished:,})"
            )
        )
        chart.rows.append(
            [
                Cell(label),
                Cell(f"{b.errors}", errors_url, True),
                Cell(
                    f"{b.finished}",
                    table_url(query, b.start, b.end, status=selectors.FINISHED_STATUSES),
                    True,
                ),
                Cell(_pct(rate), number=True),
            ]
        )
    chart.svg = charts.lines(
        chart.title,
        [bucket_label(query, b.start, True) for b in tl.buckets],
        [("Error rate", "#dc2626", marks)],
        fmt=lambda v: f"{v:.0f}%",
    )
    return chart


def latency_chart(query: OverviewQuery, tl: selectors.Timeline) -> Chart:
    chart = Chart(
        "latency",
        "Duration percentiles",
        ["Time", "Runs with a duration", "p50 (ms)", "p95 (ms)", "p99 (ms)"],
        note="from a log histogram, within 4.4% of the exact value",
    )
    series = {q: [] for q in selectors.QUANTILES}
    for b in tl.buckets:
        label = bucket_label(query, b.start)
        url = table_url(query, b.start, b.end)
        for q in selectors.QUANTILES:
            v = b.percentiles.get(q)
            series[q].append(
                None if v is None else charts.Mark(v, url, f"{label}: p{int(q * 100)} {_ms(v)}")
            )
        chart.rows.append(
            [
                Cell(label),
                Cell(f"{sum(b.durations.values())}", url, True),
                *(
                    Cell(
                        "" if b.percentiles.get(q) is None else f"{b.percentiles[q]:.0f}",
                        number=True,
                    )
                    for q in selectors.QUANTILES
                ),
            ]
        )
    colours = {0.5: "#059669", 0.95: "#d97706", 0.99: "#dc2626"}
    chart.svg = charts.lines(
        chart.title,
        [bucket_label(query, b.start, True) for b in tl.buckets],
        [(f"p{int(q * 100)}", colours[q], series[q]) for q in selectors.QUANTILES],
        fmt=lambda v: _ms(v),
    )
    chart.legend = charts.legend([(colours[q], f"p{int(q * 100)}") for q in selectors.QUANTILES])
    return chart


def by_agent_chart(query: OverviewQuery, tl: selectors.Timeline, what: str) -> Chart:
    """Tokens or cost per bucket, stacked by agent.

    The top agents by cost have their own series and the rest are summed as one
    (a segment per agent per bucket would be thousands of marks at 90 days); their
    segment links to the bucket's runs of every agent.
    """
    title = "Tokens by agent" if what == "tokens" else "Cost by agent (USD)"
    zero = 0 if what == "tokens" else Decimal(0)
    agents, others = tl.agents[:TOP_AGENTS], tl.agents[TOP_AGENTS:]
    series = [*agents, OTHERS] if others else agents
    shown = (lambda v: f"{v:,}") if what == "tokens" else _money
    chart = Chart(what, title, ["Time", "Total", *series])
    stacks = []
    for b in tl.buckets:
        label = bucket_label(query, b.start)
        values = dict(b.tokens if what == "tokens" else b.cost)
        if others:
            values[OTHERS] = sum((values.pop(a, zero) for a in others), zero)
        stack = []
        for i, name in enumerate(series):
            agent = name if name != OTHERS and query.agent is None else None
            href = table_url(query, b.start, b.end, agent=agent)
            value = values.get(name, zero)
            stack.append(
                (
                    f"ag-{i % len(charts.PALETTE)}",
                    charts.Mark(float(value), href, f"{label} {name}: {shown(value)}"),
                )
            )
        stacks.append(stack)
        total = sum(values.values(), zero)
        chart.rows.append(
            [
                Cell(label),
                Cell(str(total), table_url(query, b.start, b.end), True),
                *(Cell(str(values.get(n, zero)), number=True) for n in series),
            ]
        )
    fmt = charts.compact if what == "tokens" else (lambda v: f"${charts.compact(v)}")
    labels = [bucket_label(query, b.start, True) for b in tl.buckets]
    chart.svg = charts.stacked_bars(title, labels, stacks, fmt=fmt)
    chart.legend = charts.legend(
        [(f"ag-{i % len(charts.PALETTE)}", name) for i, name in enumerate(series)]
    )
    return chart


def credits_chart(query: OverviewQuery, tl: selectors.Timeline) -> Chart:
    chart = Chart(
        "credits", "Credits per run", ["Time", "Runs with credits", "Credits", "Credits per run"]
    )
    marks = []
    for b in tl.buckets:
        label = bucket_label(query, b.start)
        url = table_url(query, b.start, b.end)
        per_run = b.credits_per_run
        marks.append(
            None
            if per_run is None
            else charts.Mark(float(per_run), url, f"{label}: {per_run:.2f} credits per run")
        )
        chart.rows.append(
            [
                Cell(label),
                Cell(str(b.credited_runs), url, True),
                Cell(f"{b.credits}", number=True),
                Cell("" if per_run is None else f"{per_run:.4f}", number=True),
            ]
        )
    chart.svg = charts.lines(
        chart.title,
        [bucket_label(query, b.start, True) for b in tl.buckets],
        [("Credits per run", "#9333ea", marks)],
        fmt=lambda v: f"{v:,.1f}",
    )
    return chart


def summary(query: OverviewQuery, tl: selectors.Timeline) -> list[dict]:
    t = tl.totals
    return [
        {"label": "Runs", "value": f"{t.runs:,}", "href": table_url(query, query.start, query.end)},
        {
            "label": "Error rate",
            "value": _pct(t.error_rate),
            "href": table_url(query, query.start, query.end, status=selectors.ERROR_STATUSES),
        },
        *(
            {"label": f"p{int(q * 100)}", "value": _ms(t.percentiles.get(q)), "href": ""}
            for q in selectors.QUANTILES
        ),
        {"label": "Tokens", "value": f"{sum(t.tokens.values()):,}", "href": ""},
        {"label": "Cost", "value": _money(sum(t.cost.values(), Decimal(0))), "href": ""},
        {"label": "Credits", "value": f"{t.credits:,}", "href": ""},
    ]


def timeline_charts(query: OverviewQuery, tl: selectors.Timeline) -> list[Chart]:
    return [
        runs_chart(query, tl),
        error_chart(query, tl),
        latency_chart(query, tl),
        by_agent_chart(query, tl, "tokens"),
        by_agent_chart(query, tl, "cost"),
        credits_chart(query, tl),
    ]


def _change(now, before, fmt) -> str:
    if now is None or before is None:
        return "new" if now is not None and before is None else "-"
    if isinstance(now, float) and isinstance(before, float) and before == 0:
        return "-" if now == 0 else "new"
    if before == 0:
        return "new" if now else "-"
    return f"{(now - before) / before * 100:+.0f}%"


def _points(now: float | None, before: float | None) -> str:
    """A change of a rate, in percentage points."""
    if now is None or before is None:
        return "-"
    return f"{(now - before) * 100:+.1f} pp"


def ranked_chart(query: OverviewQuery, items: list[selectors.Ranked], by_version: bool) -> Chart:
    chart = Chart(
        "versions" if by_version else "agents",
        "Versions" if by_version else "Agents",
        [
            "Name",
            "Runs",
            "Δ runs",
            "Error rate",
            "Δ error rate",
            "p95",
            "Δ p95",
            "Cost",
            "Δ cost",
            "Runs per day, last 7 days",
        ],
    )
    for item in items:
        target = (
            {"version": item.agent_version_id}
            if by_version and item.agent_version_id
            else {"agent": item.agent_name}
        )
        if by_version and not item.agent_version_id:
            target = {"agent": item.agent_name}
        url = table_url(query, query.start, query.end, **target)
        chart.rows.append(
            [
                Cell(item.label, url),
                Cell(str(item.runs), url, True),
                Cell(_change(item.runs, item.previous_runs, None), number=True),
                Cell(
                    _pct(item.error_rate),
                    table_url(
                        query, query.start, query.end, status=selectors.ERROR_STATUSES, **target
                    ),
                    True,
                ),
                Cell(_points(item.error_rate, item.previous_error_rate), number=True),
                Cell(_ms(item.p95), number=True),
                Cell(_change(item.p95, item.previous_p95, None), number=True),
                Cell(_money(item.cost), number=True),
                Cell(_change(item.cost, item.previous_cost, None), number=True),
                Cell(
                    " ".join(str(v) for v in item.sparkline),
                    svg=charts.sparkline(
                        item.sparkline, f"{item.label}: runs per day, last 7 days"
                    ),
                ),
            ]
        )
    return chart


SPIKE_LABELS = {"credits": "Credits", "cost_usd": "Cost"}


def spikes_chart(spikes: list[selectors.Spike]) -> Chart:
    chart = Chart(
        "spikes",
        "Credit and cost spikes",
        ["Run", "Agent", "Created", "Spike in", "Value", "Usual for its version", "Times usual"],
        note=f"runs over {selectors.SPIKE_FACTOR}x their version's mean credits or cost per run",
    )
    for spike in spikes:
        e = spike.execution
        money = spike.measure == "cost_usd"
        chart.rows.append(
            [
                Cell(e.short_id, e.get_absolute_url()),
                Cell(e.agent_label),
                Cell(timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M")),
                Cell(SPIKE_LABELS[spike.measure]),
                Cell(_money(spike.value) if money else f"{spike.value}", number=True),
                Cell(_money(spike.usual) if money else f"{spike.usual:.2f}", number=True),
                Cell(f"{spike.ratio:.1f}x", number=True),
            ]
        )
    return chart


def approvals_chart(query: OverviewQuery, approvals: selectors.Approvals) -> Chart:
    chart = Chart(
        "approvals",
        "Approvals waiting",
        ["Waiting for", "Runs"],
        note="since each run last paused for approval",
    )
    url = f"{reverse('executions:list')}?" + query.table_params(
        None, None, status="awaiting_approval"
    )
    for label, n in approvals.ages:
        chart.rows.append([Cell(label), Cell(str(n), number=True)])
    chart.rows.append([Cell("All"), Cell(str(approvals.waiting), url, True)])
    stacks = [
        [("st-awaiting_approval", charts.Mark(n, url, f"{label}: {n}"))]
        for label, n in approvals.ages
    ]
    chart.svg = charts.stacked_bars(chart.title, [label for label, _ in approvals.ages], stacks)
    return chart


def errors_list(query: OverviewQuery, groups: list[selectors.ErrorGroup]) -> Chart:
    chart = Chart(
        "error-groups",
        "Most frequent errors",
        [
            "Error (numbers, ids and quoted values normalized)",
            "Runs",
            "Agents",
            "First seen",
            "Last seen",
        ],
        note="first and last seen to the hour",
    )
    for g in groups:
        url = table_url(query, query.start, query.end, error_group=g.message)
        chart.rows.append(
            [
                Cell(g.message, url),
                Cell(str(g.runs), url, True),
                Cell(str(g.agents), number=True),
                Cell(timezone.localtime(g.first_hour, query.tz).strftime("%Y-%m-%d %H:00")),
                Cell(timezone.localtime(g.last_hour, query.tz).strftime("%Y-%m-%d %H:00")),
            ]
        )
    return chart


CALL_LIMIT = 12


def calls_lists(query: OverviewQuery, stats: list[selectors.CallStats]) -> list[Chart]:
    """The slowest calls (p95), the most failing (error rate), and models by cost;
    under the page's filters (agent, version, source, schedule) like every chart."""
    note = ""
    columns = ["Call", "Kind", "Model", "Calls", "Failed", "Error rate", "p95", "Tokens", "Cost"]

    def row(c: selectors.CallStats) -> list[Cell]:
        url = table_url(query, query.start, query.end, step=c.name, step_model=c.model)
        return [
            Cell(c.name or "(unnamed)", url),
            Cell(c.kind.replace("_", " ")),
            Cell(c.model),
            Cell(str(c.calls), number=True),
            Cell(str(c.failed), number=True),
            Cell(_pct(c.error_rate), number=True),
            Cell(_ms(c.p95), number=True),
            Cell(f"{c.tokens}", number=True),
            Cell(_money(c.cost), number=True),
        ]

    slowest = Chart("slowest-calls", "Slowest tools and model calls (p95)", columns, note=note)
    slowest.rows = [row(c) for c in sorted(stats, key=lambda c: (-(c.p95 or 0), c.name))][
        :CALL_LIMIT
    ]
    failing = Chart("failing-calls", "Most failing tools and model calls", columns, note=note)
    failing.rows = [
        row(c)
        for c in sorted(stats, key=lambda c: (-(c.error_rate or 0), -c.failed, c.name))
        if c.failed
    ][:CALL_LIMIT]
    models: dict[str, selectors.CallStats] = {}
    for c in stats:
        if c.kind != "model_call":
            continue
        m = models.setdefault(c.model, selectors.CallStats("model_call", "", c.model))
        m.calls += c.calls
        m.failed += c.failed
        m.prompt_tokens += c.prompt_tokens
        m.completion_tokens += c.completion_tokens
        m.cost += c.cost
        for bucket, n in c.durations.items():
            m.durations[bucket] = m.durations.get(bucket, 0) + n
    by_model = Chart(
        "models",
        "Models by calls, tokens and cost",
        ["Model", "Calls", "Prompt tokens", "Completion tokens", "Cost", "p95", "Error rate"],
        note=note,
    )
    for m in sorted(models.values(), key=lambda m: (-m.calls, m.model)):
        url = table_url(query, query.start, query.end, step_model=m.model or None)
        by_model.rows.append(
            [
                Cell(m.model or "(no model)", url),
                Cell(str(m.calls), number=True),
                Cell(str(m.prompt_tokens), number=True),
                Cell(str(m.completion_tokens), number=True),
                Cell(_money(m.cost), number=True),
                Cell(_ms(m.p95), number=True),
                Cell(_pct(m.error_rate), number=True),
            ]
        )
    return [slowest, failing, by_model]
