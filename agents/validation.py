"""Checking a value against an agent version's JSON Schema, shared by every door
that accepts inputs (the ingestion API, execute, batches, schedules), and which
webhook URLs an agent version may hold."""

from urllib.parse import urlsplit

import jsonschema
from django.core.exceptions import ValidationError
from jsonschema import SchemaError

__all__ = ["SchemaError", "json_path", "schema_errors", "url_problem", "validate_webhook_url"]

# Webhooks are sent over http(s) only: Django's URLValidator alone also takes ftp://.
WEBHOOK_SCHEMES = ("http", "https")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL, or None when it can (http or https, a host).

    Where it may be sent is decided at send time (executions/control/outbound.py),
    after DNS resolution, since a name can point anywhere later.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in WEBHOOK_SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"must be an http:// or https:// URL (got {shown})"
    if not parts.hostname:
        return "must name a host (http://host/path)"
    return None


def validate_webhook_url(value: str) -> None:
    """Django validator for every model and form field that holds a webhook URL."""
    if value and (problem := url_problem(value)):
        raise ValidationError(f"Webhook URL {problem}.", code="invalid_scheme")


def json_path(root: str, parts) -> str:
    """`input.pages[1].url`: where in the request a problem is, as people write it."""
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def schema_errors(schema: dict, value, *, root: str) -> list[tuple[str, str]]:
    """Each (path, message) where `value` breaks `schema`, in document order.

    Raises SchemaError when the schema itself is not valid JSON Schema, so the caller
    can say that the agent version, not the request, needs fixing.
    """
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(value)
    # Paths mix keys and indexes: compare them as strings, never int against str.
    ordered = sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
    return [(json_path(root, e.absolute_path), e.message) for e in ordered]
