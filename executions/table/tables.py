"""The executions table's columns (django-tables2).

The selector has already filtered, sorted and paginated the rows in SQL, so the
table is handed one page of records and never sorts or counts them itself.

django-tables2 declares the columns: their names, headers, which ones sort and
their cell attributes. A row is then drawn by `row_html`, which calls each
column's render_<name> method directly: tables2's own per-cell dispatch inspects
every render method's signature for every cell, which cost more than the rest of
the page put together at 100 rows. Batch groups travel in the same list as
BatchEntry records and are drawn by the template.
"""

import uuid
from datetime import datetime
from html import escape as esc

import django_tables2 as tables
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from django_tables2.data import TableListData

from executions.models import ACTIVE_STATUSES, Status
from executions.templatetags.runboard import credits, duration, usd

from .state import SORT_FIELDS

STATUS_LABELS = dict(Status.choices)
NOT_CALCULATED = '<span class="muted" title="Not yet calculated">—</span>'
NUM = {"th": {"class": "num"}, "td": {"class": "num"}}

ALERT_ICON = (
    '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true" focusable="false">'
    '<path fill="currentColor" d="M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13Zm-.75 3h1.5v4.75'
    'h-1.5V4.5Zm0 6h1.5V12h-1.5v-1.5Z"/></svg>'
)
# URLs are reversed once per table and filled in per row: reverse() per cell adds up.
PLACEHOLDER = str(uuid.UUID(int=0))


class PresortedData(TableListData):
    """One page of records, already in the order the user asked for."""

    def order_by(self, aliases):
        # The selector sorted in SQL; re-sorting a page in Python would only be wrong
        # for NULL measures and pointless for the rest.
        return


def local_datetime(value: datetime | None) -> tuple[str, str]:
    """(short, exact): "2026-11-22 14:03" (ISO, one format for every locale) and the
    full time with seconds and zone,
    both in the time zone TimezoneMiddleware activated for this user."""
    if value is None:
        return "—", ""
    t = timezone.localtime(value)
    offset = t.strftime("%z")
    short = f"{t.year}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}"
    exact = (
        f"{t.year}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d} {t.tzname()} (UTC{offset[:3]}:{offset[3:]})"
    )
    return short, exact


def started_cell(value: datetime | None) -> str:
    short, exact = local_datetime(value)
    if value is None:
        return short
    return f'<time datetime="{value.isoformat()}" title="{exact}">{short}</time>'


def status_cell(status: str, error: str = "") -> str:
    badge = (
        f'<span class="badge badge-{status}" data-status="{status}">'
        f"{STATUS_LABELS.get(status, esc(status))}</span>"
    )
    if status != Status.FAILED or not error:
        return badge
    tip = esc(error if len(error) < 380 else error[:380].rstrip() + "…")
    return (
        f'{badge}<span class="status-alert" title="{tip}" role="img" aria-label="Error: {tip}">'
        f"{ALERT_ICON}</span>"
    )


def budget_badge(stop: str | None, soft: str | None) -> str:
    """The run's budget at a glance: stopped by it (the reason in the title), or over
    a soft limit. The same words as the run page's header."""
    if stop:
        return f' <span class="budget-pill budget-pill-stop" title="{esc(stop)}">budget stop</span>'
    if soft:
        tip = esc(f"Over a soft limit: {soft}")
        return f' <span class="budget-pill" title="{tip}">over soft budget</span>'
    return ""


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
        attrs = {"class": "table exec-table", "id": "exec-table"}
        empty_text = "No executions match these filters."

    inside_batch = False

    # Every render_<column> takes the record and returns HTML with its text escaped:
    # row_html calls them directly. f-strings and html.escape rather than format_html,
    # which was a third of the time of a 100-row page.

    def render_select(self, record) -> str:
        return (
            f'<input type="checkbox" name="ids" value="{record.pk}" form="bulk-form" '
            f'class="row-check" aria-label="Select execution {record.short_id}">'
        )

    def render_agent(self, record) -> str:
        if record.agent_removed:
            name = (
                f'<span class="removed" title="Agent removed: it was {esc(record.agent_label)}">'
                "Agent removed</span>"
            )
        else:
            name = f'<span class="agent-name">{esc(record.agent_name)}</span>'
            if record.version_name:
                name += f' <span class="version">{esc(record.version_name)}</span>'
        if record.batch_id and not self.inside_batch:
            url = self._batch_url.replace(PLACEHOLDER, str(record.batch_id))
            name += f' <a class="chip" href="{url}" title="Part of a batch">batch</a>'
        for tag in sorted((getattr(record, "tag_names", None) or "").split()):
            name += f' <a class="chip chip-tag" href="?tag={esc(tag)}">{esc(tag)}</a>'
        return name

    def render_schedule(self, record) -> str:
        if not record.schedule_id or record.schedule is None:
            return ""
        return f'<span class="schedule">{esc(record.schedule.name)}</span>'

    def render_status(self, record) -> str:
        cell = status_cell(record.status, getattr(record, "error_head", "") or "")
        return cell + budget_badge(
            getattr(record, "budget_stop", None), getattr(record, "budget_soft", None)
        )

    def render_duration(self, record) -> str:
        if record.duration_ms is not None:
            return f'<span title="{record.duration_ms} ms">{duration(record.duration_ms)}</span>'
        if record.status in ACTIVE_STATUSES and record.started_at:
            # A running execution has no duration yet: show how long it has run so far.
            elapsed = max(0, int((timezone.now() - record.started_at).total_seconds() * 1000))
            shown = duration(elapsed)
            return f'<span class="elapsed" title="Running for {shown} so far">{shown}…</span>'
        return "—"

    def render_steps(self, record) -> str:
        return f"{record.step_count:,}"

    def render_tokens(self, record) -> str:
        return f"{record.total_tokens:,}"

    def render_cost(self, record) -> str:
        return usd(record.cost_usd)

    def render_credits(self, record) -> str:
        if record.credits is None:
            return NOT_CALCULATED
        return credits(record.credits)

    def render_started(self, record) -> str:
        return started_cell(record.created_at)

    def render_id(self, record) -> str:
        feedback = ""
        if record.correction_count or record.note_count:
            parts = []
            if record.correction_count:
                parts.append(f"{record.correction_count} corrected field(s)")
            if record.note_count:
                parts.append(f"{record.note_count} note(s)")
            said = ", ".join(parts)
            feedback = f' <span class="feedback-mark" title="{said}" aria-label="{said}">✎</span>'
        url = self._detail_url.replace(PLACEHOLDER, str(record.pk))
        return (
            f'<a class="row-link" href="{url}" title="{record.pk}"><code>{record.short_id}</code>'
            f"</a>{feedback}"
        )

    @cached_property
    def _detail_url(self) -> str:
        return reverse("executions:detail", args=[PLACEHOLDER])

    @cached_property
    def _batch_url(self) -> str:
        return reverse("executions:batch_detail", args=[PLACEHOLDER])

    @cached_property
    def _cells(self) -> list:
        """(opening <td ...>, renderer) per column, worked out once per table."""
        cells = []
        for column in self.columns:
            attrs = column.attrs.get("td", {})
            opening = mark_safe(f"<td {attrs.as_html()}>" if attrs else "<td>")
            cells.append((opening, getattr(self, f"render_{column.name}")))
        return cells

    def row_html(self, record, *, swap_oob: bool = False, child: bool = False) -> SafeString:
        """One execution's <tr>: the whole row is a link to its detail page."""
        live = record.status in ACTIVE_STATUSES
        url = self._detail_url.replace(PLACEHOLDER, str(record.pk))
        classes = "exec-row is-live" if live else "exec-row"
        extra = (' hx-swap-oob="true"' if swap_oob else "") + (" data-child" if child else "")
        parts = [
            f'<tr id="row-{record.pk}" class="{classes}" data-href="{url}" '
            f'data-id="{record.pk}"{extra}>'
        ]
        for opening, render in self._cells:
            parts.append(opening)
            parts.append(render(record))
            parts.append("</td>")
        parts.append("</tr>")
        return mark_safe("".join(parts))

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
    """The page cut into runs of execution rows (as HTML) and single batch groups,
    each drawn in its own <tbody> so that a batch can expand in place."""
    out: list[tuple[str, object]] = []
    for record in table.data:
        if getattr(record, "is_batch", False):
            out.append(("batch", record))
        elif out and out[-1][0] == "rows":
            out[-1][1].append(table.row_html(record))
        else:
            out.append(("rows", [table.row_html(record)]))
    return out


def rows_html(table: ExecutionTable, *, swap_oob: bool = False, child: bool = False) -> list:
    return [table.row_html(r, swap_oob=swap_oob, child=child) for r in table.data]
