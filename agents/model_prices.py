"""The default model price table shipped with Runboard (agents/data/model_prices.json)
and how a database takes it up: the data migration that fills a fresh install and
`manage.py model_prices_update` both call prices_apply_defaults().

Only shared rows that are still Runboard's defaults (`is_default`) are rewritten: a
price staff edited in admin, or a workspace's own price, is never touched.
"""

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

DEFAULTS_PATH = Path(__file__).resolve().parent / "data" / "model_prices.json"


def _decimal(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def default_prices(path: Path = DEFAULTS_PATH) -> list[dict]:
    """The shipped prices as ModelPrice field values, one dict per model."""
    rows = json.loads(path.read_text())["prices"]
    return [
        {
            "model": row["model"].strip().lower(),
            "provider": row.get("provider") or "",
            "input_per_million": _decimal(row["input"]),
            "output_per_million": _decimal(row["output"]),
            "cached_input_per_million": _decimal(row.get("cached_input")),
            "cache_write_per_million": _decimal(row.get("cache_write")),
            "effective_date": date.fromisoformat(row["effective"])
            if row.get("effective")
            else None,
        }
        for row in rows
    ]


@dataclass
class DefaultsApplied:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # shared rows edited here, left as they are


def prices_apply_defaults(model_price, path: Path = DEFAULTS_PATH) -> DefaultsApplied:
    """Bring the shared price table up to the shipped defaults.

    `model_price` is the ModelPrice class: the live one, or the historical one a
    migration passes. New models are added, unedited defaults take the new values,
    edited shared rows and workspace rows stay as they are.
    """
    result = DefaultsApplied()
    shared = {p.model.strip().lower(): p for p in model_price.objects.filter(workspace=None)}
    fields = None
    changed = []
    new = []
    for values in default_prices(path):
        fields = list(values)
        row = shared.get(values["model"])
        if row is None:
            new.append(model_price(workspace=None, is_default=True, **values))
        elif not row.is_default:
            result.kept += 1
        elif any(getattr(row, f) != v for f, v in values.items() if f != "model"):
            for field, value in values.items():
                setattr(row, field, value)
            changed.append(row)
        else:
            result.unchanged += 1
    model_price.objects.bulk_create(new)
    if changed:
        model_price.objects.bulk_update(changed, [f for f in fields if f != "model"])
    result.created, result.updated = len(new), len(changed)
    return result
