"""Which instants Runboard can store and read back: the one range check every door that
takes a time uses (the JSON API, OTLP span times, forms, table filters and exports).

Why a range at all: PostgreSQL's timestamptz reaches years Python's datetime cannot
(before year 1 and after 9999 once converted to UTC), so `0001-01-01T00:00:00+14:00`
is stored happily and then every read of that row fails, the list, the export and even
an ORM delete. PostgreSQL also refuses zone offsets beyond ±15:59, which Python accepts.

The range is one day narrower than datetime's at each end: every stored instant can
then be shown in any time zone (offsets are under a day) without overflowing.

Imports only the standard library.
"""

from datetime import UTC, date, datetime, timedelta

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=15, minutes=59)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RANGE_TEXT = "between 0001-01-02 and 9999-12-30 (UTC)"
# Where an OTLP span whose times were clamped keeps what it really sent.
CLAMPED_KEY = "runboard.time_clamped"


class OutOfRange(ValueError):
    """A time that cannot be stored and read back; the message says why."""


def checked(value: datetime) -> datetime:
    """`value` in UTC (naive values are taken as UTC), or OutOfRange."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        hours, minutes = divmod(int(abs(offset).total_seconds()) // 60, 60)
        sign = "-" if offset < timedelta(0) else "+"
        raise OutOfRange(
            f"time zone offset {sign}{hours:02}:{minutes:02} is beyond ±15:59 "
            "(no zone has one; send the time in UTC)"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise OutOfRange(f"must be {RANGE_TEXT}, got {value.isoformat()}")
    return utc


def clamped(value: datetime) -> tuple[datetime, bool]:
    """`value` moved into the range if it is outside: (time, whether it was moved)."""
    try:
        return checked(value), False
    except OutOfRange:
        pass
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return (EARLIEST if value.year < 5000 else LATEST), True
    return (EARLIEST if utc < EARLIEST else LATEST), True


def from_unix_nanos(ns: int) -> tuple[datetime | None, bool]:
    """An OTLP time (nanoseconds since the epoch; 0 means unset): (time, clamped).

    A span with an impossible time is still worth keeping: its time goes to the nearest
    end of the range and the caller records that it did.
    """
    if not ns:
        return None, False
    try:
        value = EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return (EARLIEST if ns < 0 else LATEST), True
    return clamped(value)


def day_problem(day: date) -> str | None:
    """Why a calendar-day filter cannot be applied, or None: the day and the next one
    must start inside the range in any zone (an end date filters up to the next day)."""
    if not EARLIEST.date() < day < LATEST.date():
        first = EARLIEST.date() + timedelta(days=1)
        last = LATEST.date() - timedelta(days=1)
        return f"Enter a date between {first.isoformat()} and {last.isoformat()}."
    return None
