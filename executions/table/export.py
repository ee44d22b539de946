"""CSV and JSON exports of the executions table, streamed.

Rows come from the database in chunks through a server-side cursor and leave as
they are written, so an export of 100,000 executions never holds them all in
memory, on the server or in the database driver.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse
from django.utils import timezone

CHUNK_SIZE = 2000

# (header, field in values_list)
COLUMNS = [
    ("id", "id"),
    ("agent", "agent_name"),
    ("version", "version_name"),
    ("agent_removed", "agent_id"),
    ("status", "status"),
    ("source", "source"),
    ("schedule", "schedule__name"),
    ("batch_id", "batch_id"),
    ("created_at", "created_at"),
    ("started_at", "started_at"),
    ("completed_at", "completed_at"),
    ("duration_ms", "duration_ms"),
    ("steps", "step_count"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("total_tokens", "total_tokens"),
    ("cost_usd", "cost_usd"),
    ("credits", "credits"),
    ("corrections", "correction_count"),
    ("notes", "note_count"),
    ("error", "error"),
    ("summary", "summary"),
    ("metadata", "metadata"),
]
HEADERS = [h for h, _ in COLUMNS]
FIELDS = [f for _, f in COLUMNS]
# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _plain(header: str, value):
    """A value as JSON has it: ISO times in UTC, decimals as strings (exact)."""
    if header == "agent_removed":
        return value is None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal) and header == "cost_usd":
        # Costs have 12 places for per-token prices; their trailing zeros say nothing.
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, Decimal):
        return str(value)
    if value is not None and header in ("id", "batch_id"):
        return str(value)
    return value


def records(rows: Iterable[tuple]) -> Iterator[dict]:
    for row in rows:
        yield {h: _plain(h, v) for h, v in zip(HEADERS, row, strict=True)}


class _Echo:
    """A file that hands back what is written, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADERS)
    for record in records(rows):
        yield writer.writerow([_csv_cell(record[h]) for h in HEADERS])


def json_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """A JSON array, one execution per line, written as the rows arrive."""
    yield "[\n"
    first = True
    for record in records(rows):
        yield ("" if first else ",\n") + json.dumps(record, ensure_ascii=False)
        first = False
    yield "\n]\n"


def export_response(queryset, fmt: str) -> StreamingHttpResponse:
    rows = queryset.values_list(*FIELDS).iterator(chunk_size=CHUNK_SIZE)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(
            json_chunks(rows), content_type="application/json; charset=utf-8"
        )
    response["Content-Disposition"] = f'attachment; filename="executions-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
