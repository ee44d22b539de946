"""Checking a value against an agent version's JSON Schema, shared by every door
that accepts inputs (the ingestion API, execute, batches, schedules)."""

import jsonschema
from jsonschema import SchemaError

__all__ = ["SchemaError", "json_path", "schema_errors"]


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
