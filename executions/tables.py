"""The executions table's columns (django-tables2).

The selector has already filtered, sorted and paginated the rows in SQL, so the
table is handed one page of records and never sorts or counts them itself.
Batch groups travel in the same list as BatchEntry records and are drawn by
the template; only executions go through these columns.
"""

from datetime import datetime

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django_tables2.data import TableListData

from .filters import SORT_FIELDS
from .models import ACTIVE_STATUSES, Status
from .templatetags.runboard import credits, duration, usd

STATUS_LABELS = dict(Status.choices)
NOT_CALCULATED = mark_safe('<span class="muted" title="Not yet calculated">—</span>')
NUM = {"th": {"class": "num"}, "td": {"class": "num"}}

ALERT_ICON = mark_safe(
    '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">'
    '<path fill="currentColor" d="M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13Zm-.75 3h1.5v4.75'
    'h-1.5V4.5Zm0 6h1.5V12h-1.5v-1.5Z"/></svg>'
)


class PresortedData(TableListData):
    """One page of records, already in the order the user asked for."""

    def order_by(self, aliases):
        # The selector sorted in SQL; re-sorting a page in Python would only be wrong
        # for NULL measures and pointless for the rest.
        return


def local_datetime(value: datetime | None):
    """(short, exact): "22/11/2026 14:03" and the full time with seconds and zone."""
    if value is None:
        return "—", ""
    local = timezone.localtime(value)
    return local.strftime("%d/%m/%Y %H:%M"), local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + (
        f" {local.tzname()} (UTC{local.strftime('%z')[:3]}:{local.strftime('%z')[3:]})"
    )


def started_cell(value: datetime | None):
    short, exact = local_datetime(value)
    if value is None:
        return short
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, short)


def status_cell(status: str, error: str = ""):
    badge = format_html(
        '<span class="badge badge-{}" data-status="{}">{}</span>',
        status,
        status,
        STATUS_LABELS.get(status, status),
    )
    if status != Status.FAILED or not error:
        return badge
    tip = error if len(error) < 380 else error[:380].rstrip() + "…"
    return format_html(
        '{}<span class="status-alert" title="{}" role="img" aria-label="Error: {}">{}</span>',
        badge,
        tip,
        tip,
        ALERT_ICON,
    )


class ExecutionTable(tables.Table):
    select = tables.Column(
        empty_values=(),
        orderable=False,
        verbose_name="",
        attrs={"th": {"class": "col-select"}, "td": {"class": "col-select"}},
    )
    agent = tables.Column(accessor="agent_name", verbose_name="Agent", orderable=False)
    schedule = tables.Column(
        accessor="schedule__name", verbose_name="Schedule", orderable=False, default=""
    )
    status = tables.Column(verbose_name="Status", orderable=False)
    duration = tables.Column(
        accessor="duration_ms", verbose_name="Duration", empty_values=(), attrs=NUM
    )
    steps = tables.Column(accessor="step_count", verbose_name="Steps", attrs=NUM)
    tokens = tables.Column(accessor="total_tokens", verbose_name="Tokens", attrs=NUM)
    cost = tables.Column(accessor="cost_usd", verbose_name="Cost", attrs=NUM)
    credits = tables.Column(verbose_name="Credits", empty_values=(), attrs=NUM)
    started = tables.Column(
        accessor="created_at",
        verbose_name="Started",
        empty_values=(),
        attrs={"th": {"class": "col-started"}, "td": {"class": "col-started nowrap"}},
    )
    id = tables.Column(verbose_name="ID", orderable=False)

    class Meta:
        orderable = True
        template_name = "executions/table/table.html"
        attrs = {"class": "table exec-table", "id": "exec-table"}
        row_attrs = {
            "id": lambda record: f"row-{record.pk}",
            "class": lambda record: (
                "exec-row is-live" if record.status in ACTIVE_STATUSES else "exec-row"
            ),
            "data-href": lambda record: reverse("executions:detail", args=[record.pk]),
            "data-id": lambda record: str(record.pk),
        }
        empty_text = "No executions match these filters."

    def render_select(self, record):
        return format_html(
            '<input type="checkbox" name="ids" value="{}" form="bulk-form" class="row-check" '
            'aria-label="Select execution {}">',
            record.pk,
            record.short_id,
        )

    def render_agent(self, record):
        if record.agent_removed:
            name = format_html(
                '<span class="removed" title="Agent removed: it was {}">Agent removed</span>',
                record.agent_label,
            )
        else:
            name = format_html('<span class="agent-name">{}</span>', record.agent_name)
            if record.version_name:
                name = format_html('{} <span class="version">{}</span>', name, record.version_name)
        if record.batch_id and not getattr(self, "inside_batch", False):
            name = format_html(
                '{} <a class="chip" href="{}" title="Part of a batch">batch</a>',
                name,
                reverse("executions:batch_detail", args=[record.batch_id]),
            )
        return name

    def render_schedule(self, value):
        return format_html('<span class="schedule">{}</span>', value)

    def render_status(self, record):
        return status_cell(record.status, getattr(record, "error_head", "") or "")

    def render_duration(self, record):
        if record.duration_ms is not None:
            return format_html(
                '<span title="{} ms">{}</span>', record.duration_ms, duration(record.duration_ms)
            )
        if record.status in ACTIVE_STATUSES and record.started_at:
            # A running execution has no duration yet: show how long it has run so far.
            elapsed = int((timezone.now() - record.started_at).total_seconds() * 1000)
            return format_html(
                '<span class="elapsed" title="Running for {} so far">{}…</span>',
                duration(elapsed),
                duration(max(elapsed, 0)),
            )
        return "—"

    def render_steps(self, value):
        return f"{value:,}"

    def render_tokens(self, value):
        return f"{value:,}"

    def render_cost(self, value):
        return usd(value)

    def render_credits(self, record):
        if record.credits is None:
            return NOT_CALCULATED
        return credits(record.credits)

    def render_started(self, value):
        return started_cell(value)

    def render_id(self, record):
        feedback = ""
        if record.correction_count or record.note_count:
            parts = []
            if record.correction_count:
                parts.append(f"{record.correction_count} corrected field(s)")
            if record.note_count:
                parts.append(f"{record.note_count} note(s)")
            feedback = format_html(
                ' <span class="feedback-mark" title="{}" aria-label="{}">✎</span>',
                ", ".join(parts),
                ", ".join(parts),
            )
        return format_html(
            '<a class="row-link" href="{}" title="{}"><code>{}</code></a>{}',
            reverse("executions:detail", args=[record.pk]),
            record.pk,
            record.short_id,
            feedback,
        )

    def headers(self, sort: str) -> list[dict]:
        """Each column's header with the sort its link asks for next.

        A first click sorts a measure largest first, which is what finding outliers
        needs; a second click reverses it.
        """
        current, descending = sort.lstrip("-"), sort.startswith("-")
        out = []
        for column in self.columns:
            sortable = column.name in SORT_FIELDS
            entry = {"column": column, "sortable": sortable, "direction": None}
            if sortable:
                if column.name == current:
                    entry["direction"] = "descending" if descending else "ascending"
                    entry["next"] = column.name if descending else f"-{column.name}"
                else:
                    entry["next"] = f"-{column.name}"
            out.append(entry)
        return out


def execution_table(records, *, inside_batch: bool = False) -> ExecutionTable:
    """A table over one page of records (executions and BatchEntry groups)."""
    table = ExecutionTable(PresortedData(list(records)))
    table.inside_batch = inside_batch
    return table


def segments(table: ExecutionTable) -> list[tuple[str, object]]:
    """The table's rows cut into runs of executions and single batch groups, each
    drawn in its own <tbody> so that a batch can expand in place."""
    out: list[tuple[str, object]] = []
    for row in table.rows:
        if getattr(row.record, "is_batch", False):
            out.append(("batch", row.record))
        elif out and out[-1][0] == "rows":
            out[-1][1].append(row)
        else:
            out.append(("rows", [row]))
    return out
