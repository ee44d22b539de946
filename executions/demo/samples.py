"""A plausible value for a JSON Schema: what the demo runtime answers when it ends a
run, so a run started from the dashboard returns output that fits its agent's
output schema (fields, types, enums, formats, ranges) instead of a placeholder.

Covers what the demo catalog's schemas use: object, array, string (enum, format
date / date-time / email / uri, pattern ^[A-Z]{3}$), number and integer (minimum,
maximum), boolean, null, and a list of types. Anything else gets null.
"""

from __future__ import annotations

import random
from typing import Any

WORDS = ["north", "wind", "invoice", "order", "summary", "cascade", "harbor", "ledger"]


def sample(schema: Any, rng: random.Random, name: str = "value", depth: int = 0) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return sample(schema[key][0], rng, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {key: sample(spec, rng, key, depth + 1) for key, spec in properties.items()}
    if kind == "array":
        low = int(schema.get("minItems", 1) or 0)
        count = max(low, rng.randint(1, 3))
        return [sample(schema.get("items", {}), rng, name, depth + 1) for _ in range(count)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 1000)
        if kind == "integer":
            return rng.randint(int(low), int(high))
        return round(rng.uniform(float(low), float(high)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        return _string(schema, rng, name)
    return None


def _string(schema: dict, rng: random.Random, name: str) -> str:
    fmt = schema.get("format")
    if fmt == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt == "date-time":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
    if fmt == "email":
        return f"{rng.choice(WORDS)}@example.com"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(WORDS)}"
    if schema.get("pattern") == "^[A-Z]{3}$":
        return rng.choice(["EUR", "USD", "GBP"])
    text = f"{name.replace('_', ' ')} {rng.choice(WORDS)}"
    low, high = int(schema.get("minLength", 0) or 0), schema.get("maxLength")
    text = text.ljust(low, "x")
    return text[: int(high)] if isinstance(high, int) else text
