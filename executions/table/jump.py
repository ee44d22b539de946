"""Jumping to page N of a time-ordered table through the hourly rollups.

Page 25,000 of a million runs by OFFSET reads and discards 500,000 index entries.
The overview's hourly rollups (kept exact by triggers) already count the runs of
every hour per status (StatusHour), per agent (AgentHour), and per agent, version,
source, schedule and status (RunRollup): summing them
from the newest hour down finds the hour that holds the page's first row, and the
page is then an OFFSET of at most an hour's runs, counted from that hour's end.

Only for the filters the rollups carry (agent, version, status, source, schedule,
and dates that fall on whole UTC hours); any other filter, and near the ends, the
page is an OFFSET as before.
"""

from datetime import UTC, datetime, timedelta

from django.db.models import Sum

from executions.overview.models import AgentHour, RunRollup, StatusHour

from .filters import ExecutionFilter, local_midnight

# Below this many rows to skip, a plain OFFSET is as cheap as summing the hours.
JUMP_MIN_ROWS = 2_000
HOUR = timedelta(hours=1)
ROLLUP_FILTERS = frozenset({"agent", "version", "status", "source", "schedule", "start", "end"})


def _whole_hour(moment: datetime) -> bool:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0) == moment


def hourly(filterset: ExecutionFilter):
    """The rollup rows for these filters, or None if the rollups cannot answer them."""
    applied = filterset.applied()
    if set(applied) - ROLLUP_FILTERS:
        return None
    # The narrowest rollup that carries the filters: per hour and status (15,000
    # rows for 90 days), per hour and agent, or the full key (157,000).
    if not set(applied) - {"status", "start", "end"}:
        model = StatusHour
    elif not set(applied) - {"agent", "start", "end"}:
        model = AgentHour
    else:
        model = RunRollup
    rows = model.objects.filter(workspace_id=filterset.workspace.pk)
    if "agent" in applied:
        rows = rows.filter(agent_name__in=applied["agent"])
    if "version" in applied:
        rows = rows.filter(agent_version_id=applied["version"].pk)
    if "status" in applied:
        rows = rows.filter(status__in=filterset.status_values(applied["status"]))
    if "source" in applied:
        rows = rows.filter(source=applied["source"])
    if "schedule" in applied:
        rows = rows.filter(schedule_id=applied["schedule"].pk)
    for name, lookup, day in (("start", "gte", 0), ("end", "lt", 1)):
        if name in applied:
            bound = local_midnight(applied[name] + timedelta(days=day))
            if not _whole_hour(bound):
                # A time zone a half hour off UTC cuts an hour in two: the rollups
                # cannot say how many of its runs fall on each side.
                return None
            rows = rows.filter(**{f"hour__{lookup}": bound})
    return rows


def boundary(filterset: ExecutionFilter, *, skip: int, descending: bool):
    """(moment, rows beyond it) to start a page `skip` rows from the top of the order.

    Descending, the page starts among the rows created before `moment`, after the
    `beyond` rows created at or after it; ascending, among rows at or after
    `moment`, after the `beyond` created before it. None when the rollups cannot
    answer these filters.
    """
    rows = hourly(filterset)
    if rows is None:
        return None
    order = "-hour" if descending else "hour"
    passed = 0
    # Per hour, summed by the database; the running total is kept here, stopping at
    # the hour that holds the page (at most the 2,160 hours of 90 days).
    for hour, n in (
        rows.values("hour").annotate(n=Sum("runs")).order_by(order).values_list("hour", "n")
    ):
        if passed + n > skip:
            return (hour + HOUR if descending else hour), passed
        passed += n
    return None
