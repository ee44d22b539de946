"""Model prices for steps that report tokens but no cost: a per-process cached table.

A workspace's own prices win over the shared table (Runboard's defaults and staff's
additions, agents/model_prices.py). A cost the instrumentation reported itself is
never replaced: semconv.py reads it, and only steps still without one are priced.
"""

import re
import time

from django.db.models.signals import post_delete, post_save

from agents.models import ModelPrice

from .steps import StepRecord, money

# Hosted copies of a provider's model carry the host's prefix: Bedrock's
# `us.anthropic.claude-3-5-sonnet-20240620-v1:0`, Vertex's `models/gemini-2.0-flash`.
HOST_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?(?:anthropic|meta|mistral|amazon|cohere|ai21)\.")
# What may follow a priced name in a variant of it: a date, a version, a tag.
VARIANT_SEPARATORS = "-:@_"

Table = dict[str, ModelPrice]


def _names(model: str) -> list[str]:
    name = model.strip().lower()
    names = [name]
    if "/" in name:
        names.append(name.rsplit("/", 1)[1])
    stripped = HOST_PREFIX.sub("", names[-1])
    if stripped != names[-1]:
        names.append(stripped)
    return names


def _price_for(model: str, prices: Table) -> ModelPrice | None:
    """The price of a model, also for dated or provider-prefixed names.

    `gpt-4o-2024-08-06` is priced as `gpt-4o` and `openai/gpt-4o` as `gpt-4o`: the
    longest priced name that the model starts with, followed by a separator, wins, so
    `gpt-4o-mini` is not priced as `gpt-4o` and `gpt-4.1` not as `gpt-4`. An exact
    entry (`gpt-4o-2024-05-13`, which cost more) wins over its family.
    """
    names = _names(model)
    for name in names:
        if name in prices:
            return prices[name]
    best = None
    for name in names:
        for priced, price in prices.items():
            if (
                name.startswith(priced)
                and name[len(priced)] in VARIANT_SEPARATORS
                and (best is None or len(priced) > len(best[0]))
            ):
                best = (priced, price)
    return best[1] if best else None


_prices_cache: tuple[float, dict[int | None, Table]] | None = None
PRICES_TTL_SECONDS = 30.0


def model_prices() -> dict[int | None, Table]:
    """The price tables by workspace id (None: the shared one), read at most every
    30 s per process: a few hundred rows that change by hand, and reading them per
    request would add a round trip to each batch. Saving or deleting a price here
    forgets the cache at once."""
    global _prices_cache
    now = time.monotonic()
    if _prices_cache is None or now - _prices_cache[0] > PRICES_TTL_SECONDS:
        tables: dict[int | None, Table] = {}
        for p in ModelPrice.objects.all():
            tables.setdefault(p.workspace_id, {})[p.model.strip().lower()] = p
        _prices_cache = (now, tables)
    return _prices_cache[1]


def forget_prices(**kwargs) -> None:
    global _prices_cache
    _prices_cache = None


post_save.connect(forget_prices, sender=ModelPrice, dispatch_uid="steps_writer_prices_save")
post_delete.connect(forget_prices, sender=ModelPrice, dispatch_uid="steps_writer_prices_delete")


def price_for(model: str, *, workspace_id: int | None) -> ModelPrice | None:
    tables = model_prices()
    own = tables.get(workspace_id) if workspace_id is not None else None
    return (own and _price_for(model, own)) or _price_for(model, tables.get(None, {}))


def fill_costs(records: list[StepRecord], *, workspace_id: int | None) -> None:
    """Price the steps that report tokens but no cost (the price table is cached)."""
    wanting = [
        r
        for r in records
        if r.cost_usd is None and r.model and (r.prompt_tokens or r.completion_tokens)
    ]
    if not wanting:
        return
    for r in wanting:
        price = price_for(r.model, workspace_id=workspace_id)
        if price is not None:
            r.cost_usd = money(
                price.cost(
                    r.prompt_tokens,
                    r.completion_tokens,
                    cache_read_tokens=r.cache_read_tokens,
                    cache_write_tokens=r.cache_write_tokens,
                )
            )
            if r.provided is not None:
                r.provided.add("cost_usd")
