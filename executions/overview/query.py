"""The overview's URL state: range, custom dates, filters, saved view; validated.

Every parameter is checked on its own: a bad one is named in `errors` and dropped,
the rest still apply (as the executions table does). Times are in the viewer's
time zone (TimezoneMiddleware activated it); bucket edges are UTC hours (or
minutes for the last hour), because the rollups are hourly.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote_plus, urlencode

from django.http import QueryDict
from django.utils import timezone

from agents.models import Workspace
from executions.models import SavedView, Source
from executions.table.filters import filter_choices

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_RANGE = "24h"
MAX_DAYS = 400
FILTERS = ("agent", "version", "source", "schedule")
PARAMS = ("range", "start", "end", *FILTERS, "view")


@dataclass
class OverviewQuery:
    workspace: Workspace
    tz: object
    range: str | None
    start_date: date | None
    end_date: date | None
    start: datetime
    end: datetime
    grain: str  # "minute", "hour" or "day"
    edges: list[datetime]  # bucket edges, UTC, len = buckets + 1
    agent: str | None = None
    version: int | None = None
    version_label: str = ""
    source: str | None = None
    schedule: int | None = None
    schedule_label: str = ""
    view: SavedView | None = None
    errors: dict[str, str] = field(default_factory=dict)
    choices: dict = field(default_factory=dict)

    @property
    def buckets(self) -> list[tuple[datetime, datetime]]:
        return list(zip(self.edges, self.edges[1:], strict=False))

    @property
    def previous(self) -> tuple[datetime, datetime]:
        """The period of the same length just before, for "change vs previous"."""
        return self.start - (self.end - self.start), self.start

    def state(self, **changes) -> dict[str, str]:
        """The page's own parameters, for links within the overview."""
        values = {
            "range": self.range if self.start_date is None else None,
            "start": self.start_date.isoformat() if self.start_date else None,
            "end": self.end_date.isoformat() if self.end_date else None,
            "agent": self.agent,
            "version": self.version,
            "source": self.source,
            "schedule": self.schedule,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}

    def querystring(self, **changes) -> str:
        return urlencode(self.state(**changes))

    def table_params(self, start: datetime | None, end: datetime | None, **extra) -> str:
        """The executions table's query for exactly the runs of [start, end) under
        these filters: what every bar, point and row links to. Called ~1,000 times a
        page, so the filters are encoded once (same output as one urlencode)."""
        if "_filter_params" not in self.__dict__:
            pairs = [
                ("agent", self.agent),
                ("version", self.version),
                ("source", self.source),
                ("schedule", self.schedule),
            ]
            self.__dict__["_filter_params"] = urlencode(
                [(k, str(v)) for k, v in pairs if v not in (None, "")]
            )
        parts = [self.__dict__["_filter_params"]]
        for name, value in extra.items():
            values = value if isinstance(value, list | tuple) else [value]
            parts.append(urlencode([(name, str(v)) for v in values if v not in (None, "")]))
        if start is not None and end is not None:
            parts.append(f"after={quote_plus(iso(start))}&before={quote_plus(iso(end))}")
        return "&".join(p for p in parts if p)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def local_day_start(day: date, tz) -> datetime:
    """Local midnight, as the UTC hour that holds it (the same instant in every zone
    with a whole-hour offset; in a :30 or :45 zone, the hour before)."""
    return floor_hour(timezone.make_aware(datetime.combine(day, time.min), tz))


def _day_edges(first: date, last: date, tz) -> list[datetime]:
    return [local_day_start(first + timedelta(days=i), tz) for i in range((last - first).days + 2)]


def _hour_edges(start: datetime, end: datetime) -> list[datetime]:
    count = int((end - start).total_seconds() // 3600)
    return [start + timedelta(hours=i) for i in range(count + 1)]


def _parse_date(raw: str, name: str, errors: dict) -> date | None:
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        errors[name] = f"{name}: enter a date as YYYY-MM-DD (got “{raw[:40]}”)."
        return None
    if not 2000 <= value.year <= 2100:
        errors[name] = f"{name}: the date must be between the years 2000 and 2100."
        return None
    return value


def _saved_view(workspace, raw: str, errors: dict) -> SavedView | None:
    view = None
    if raw.isdigit() and len(raw) < 12:
        view = SavedView.objects.filter(workspace=workspace, pk=int(raw)).first()
    if view is None:
        errors["view"] = f"view: there is no saved view “{raw[:40]}” in this workspace."
    return view


def parse(params: QueryDict, *, workspace: Workspace, now: datetime | None = None) -> OverviewQuery:
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    errors: dict[str, str] = {}
    raw = {name: params.get(name, "").strip() for name in PARAMS}

    view = _saved_view(workspace, raw["view"], errors) if raw["view"] else None
    if view is not None:
        # The view's filters that the overview knows; the page's own parameters win.
        saved = QueryDict(view.query)
        for name in FILTERS:
            if not raw[name]:
                raw[name] = saved.get(name, "").strip()

    choices = filter_choices(workspace)
    agent = raw["agent"] or None
    if agent and agent not in {value for value, _ in choices["agent"]}:
        errors["agent"] = f"agent: there is no agent “{agent[:60]}” in this workspace."
        agent = None
    version, version_label = _pick(raw["version"], choices["version"], "version", errors)
    schedule, schedule_label = _pick(raw["schedule"], choices["schedule"], "schedule", errors)
    source = raw["source"] or None
    if source and source not in Source.values:
        errors["source"] = f"source: choose one of {', '.join(Source.values)}."
        source = None

    start_date = _parse_date(raw["start"], "start", errors) if raw["start"] else None
    end_date = _parse_date(raw["end"], "end", errors) if raw["end"] else None
    if start_date and end_date and end_date < start_date:
        errors["end"] = "end: the end date is before the start date."
        end_date = None
    if start_date and end_date and (end_date - start_date).days >= MAX_DAYS:
        errors["end"] = f"end: a custom range is at most {MAX_DAYS} days."
        end_date = None
    range_name = raw["range"] or DEFAULT_RANGE
    if range_name not in RANGES:
        errors["range"] = f"range: choose one of {', '.join(RANGES)} (got “{range_name[:20]}”)."
        range_name = DEFAULT_RANGE

    if start_date or end_date:
        today = timezone.localtime(now, tz).date()
        first = start_date or (end_date - timedelta(days=6))
        last = end_date or max(first, today)
        if (last - first).days >= MAX_DAYS:
            last = first + timedelta(days=MAX_DAYS - 1)
        start, end = local_day_start(first, tz), local_day_start(last + timedelta(days=1), tz)
        if (last - first).days < 2:
            grain, edges = "hour", _hour_edges(start, end)
        else:
            grain, edges = "day", _day_edges(first, last, tz)
        range_name = None
    elif range_name == "1h":
        end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        grain, edges = "minute", [end - timedelta(minutes=60 - i) for i in range(61)]
    elif range_name in ("24h", "7d"):
        end = floor_hour(now) + timedelta(hours=1)
        grain, edges = "hour", _hour_edges(end - RANGES[range_name], end)
    else:
        last = timezone.localtime(now, tz).date()
        first = last - timedelta(days=RANGES[range_name].days - 1)
        grain, edges = "day", _day_edges(first, last, tz)
    return OverviewQuery(
        workspace=workspace,
        tz=tz,
        range=range_name,
        start_date=start_date,
        end_date=end_date if start_date or end_date else None,
        start=edges[0],
        end=edges[-1],
        grain=grain,
        edges=edges,
        agent=agent,
        version=version,
        version_label=version_label,
        source=source,
        schedule=schedule,
        schedule_label=schedule_label,
        view=view,
        errors=errors,
        choices=choices,
    )


def _pick(raw: str, options, name: str, errors: dict) -> tuple[int | None, str]:
    if not raw:
        return None, ""
    labels = dict(options)
    if raw not in labels or not raw:
        errors[name] = f"{name}: there is no {name} “{raw[:40]}” in this workspace."
        return None, ""
    return int(raw), labels[raw]
