"""Model prices for steps that report tokens but no cost: a per-process cached table."""

import time

from django.db.models.signals import post_delete, post_save

from agents.models import ModelPrice

from .steps import StepRecord, money


def _price_for(model: str, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """The price of a model, also for dated or provider-prefixed names.

    `gpt-4o-2024-08-06` is priced as `gpt-4o` and `openai/gpt-4o` as `gpt-4o`: the
    longest priced name that the model starts with wins, so `gpt-4o-mini` is not
    priced as `gpt-4o`.
    """
    name = model.strip().lower()
    if name in prices:
        return prices[name]
    if "/" in name:
        name = name.rsplit("/", 1)[1]
        if name in prices:
            return prices[name]
    best = None
    for priced, price in prices.items():
        if name.startswith(priced) and (best is None or len(priced) > len(best[0])):
            best = (priced, price)
    return best[1] if best else None


_prices_cache: tuple[float, dict[str, ModelPrice]] | None = None
PRICES_TTL_SECONDS = 30.0


def model_prices() -> dict[str, ModelPrice]:
    """The price table, read at most every 30 s per process: it is a few rows that
    change by hand, and reading it per request would add a round trip to each batch.
    Saving or deleting a price here forgets the cache at once."""
    global _prices_cache
    now = time.monotonic()
    if _prices_cache is None or now - _prices_cache[0] > PRICES_TTL_SECONDS:
        prices = {p.model.strip().lower(): p for p in ModelPrice.objects.all()}
        _prices_cache = (now, prices)
    return _prices_cache[1]


def forget_prices(**kwargs) -> None:
    global _prices_cache
    _prices_cache = None


post_save.connect(forget_prices, sender=ModelPrice, dispatch_uid="steps_writer_prices_save")
post_delete.connect(forget_prices, sender=ModelPrice, dispatch_uid="steps_writer_prices_delete")


def fill_costs(records: list[StepRecord]) -> None:
    """Price the steps that report tokens but no cost (the price table is cached)."""
    wanting = [
        r
        for r in records
        if r.cost_usd is None and r.model and (r.prompt_tokens or r.completion_tokens)
    ]
    if not wanting:
        return
    prices = model_prices()
    if not prices:
        return
    for r in wanting:
        price = _price_for(r.model, prices)
        if price is not None:
            r.cost_usd = money(price.cost(r.prompt_tokens, r.completion_tokens))
            if r.provided is not None:
                r.provided.add("cost_usd")
