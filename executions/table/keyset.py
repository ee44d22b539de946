"""Keyset (seek) pages of the executions table and the API: cursors and the condition
that starts a page just after (or just before) a row.

An OFFSET page makes the database read and throw away every row before it, so page
25,000 of a million rows costs 500,000 row reads. A cursor remembers where the last
page ended (the sort value and the id of its last row); the next page is "the rows
strictly after that one in this order", which the sort's index finds directly, at the
same cost on any page. It also stays right while new runs arrive: an OFFSET page
shifts by one row for every run created meanwhile (a row shown twice, or skipped),
a cursor does not.
"""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from executions import timestamps

from .state import SORT_FIELDS

NEXT, PREV = "n", "p"


class BadCursor(ValueError):
    """A cursor that was not written by us, or for another sort."""


@dataclass(frozen=True)
class Cursor:
    """A position in one sort order: just after (NEXT) or before (PREV) a row."""

    sort: str
    value: object  # the row's sort value (None for a measure not yet calculated)
    pk: uuid.UUID
    direction: str = NEXT

    @property
    def backwards(self) -> bool:
        return self.direction == PREV

    def encode(self) -> str:
        value = self.value
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        raw = json.dumps([self.sort, value, self.pk.hex, self.direction], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, *, sort: str) -> Cursor:
    """The cursor in `token`, for the table sorted by `sort`; BadCursor if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor_sort, value, pk, direction = json.loads(raw)
        pk = uuid.UUID(hex=pk)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadCursor("This cursor is not one Runboard wrote; start again from page 1.") from None
    if cursor_sort != sort:
        raise BadCursor(
            f"This cursor belongs to the order {cursor_sort!r}, not {sort!r}; "
            "start again from page 1."
        )
    if direction not in (NEXT, PREV):
        raise BadCursor("This cursor has no direction; start again from page 1.")
    return Cursor(sort=sort, value=_parse_value(sort, value), pk=pk, direction=direction)


def _parse_value(sort: str, value):
    name, nullable = SORT_FIELDS[sort.lstrip("-")]
    bad = BadCursor("This cursor's position is not a value of its sort; start again from page 1.")
    if value is None:
        if not nullable:
            raise bad
        return None
    if name == "created_at":
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None or parsed.tzinfo is None:
                raise bad
            return timestamps.checked(parsed)
        except ValueError:  # impossible dates, out-of-range years and zone offsets
            raise bad from None
    if name in ("cost_usd", "credits"):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise bad from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad
    return value


def sort_value(row, sort: str):
    """The value a row (an execution, or a batch group in time order) is sorted by."""
    name, _ = SORT_FIELDS[sort.lstrip("-")]
    return getattr(row, name)


def after(sort: str, value, pk, *, reverse: bool = False, pk_field: str = "pk") -> Q:
    """Rows strictly after (value, pk) in table_ordering(sort, reverse=reverse).

    That ordering is (measure, id), NULL measures last (first when reversed). The
    redundant bound on the measure alone (`<=` or `>=`) is what lets the index range
    start at the row instead of at the top: PostgreSQL cannot read one out of an OR.
    """
    name, nullable = SORT_FIELDS[sort.lstrip("-")]
    descending = sort.startswith("-") != reverse
    nulls_last = not reverse
    cmp = "lt" if descending else "gt"
    tie = Q(**{f"{pk_field}__{cmp}": pk})
    if value is None:
        # Among the NULLs, only the id orders; the non-NULLs all come before (NULLS
        # LAST) or all after (NULLS FIRST).
        within = Q(**{f"{name}__isnull": True}) & tie
        return within if nulls_last else within | Q(**{f"{name}__isnull": False})
    beyond = Q(**{f"{name}__{cmp}": value}) | (Q(**{name: value}) & tie)
    bounded = Q(**{f"{name}__{cmp}e": value}) & beyond
    if nullable and nulls_last:
        return bounded | Q(**{f"{name}__isnull": True})
    return bounded
