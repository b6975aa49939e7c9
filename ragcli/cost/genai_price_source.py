"""Prices from `genai-prices` (pydantic's maintained price database), read from the data bundled in the package.

The package is used offline only: its opt-in `UpdatePrices` downloader is never started, so the prices are the
ones of the installed version (upgrade the package to refresh them). It prices every usage shape ragcli records:
cache reads, 5-minute and 1-hour cache writes, tiered long-context rates and the batch discount (which, as the
providers bill it, also applies to the cache rates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from ragcli.types import Usage

log = logging.getLogger(__name__)

SOURCE = "genai-prices"


@dataclass(frozen=True)
class GenaiModel:
    """A model found in genai-prices: its own id, its provider and the day its current price took effect."""

    ref: str
    """The name it was found by (passed back to genai-prices when pricing)."""
    model_id: str
    provider_id: str
    price_date: date | None
    context_window: int | None
    version: str


@lru_cache(maxsize=1)
def _package() -> Any | None:
    try:
        import genai_prices
    except ImportError:
        return None
    return genai_prices


def available() -> bool:
    """Whether genai-prices is installed."""
    return _package() is not None


def version() -> str:
    pkg = _package()
    return str(getattr(pkg, "__version__", "")) if pkg is not None else ""


def _active_date(prices: Any, now: datetime) -> date | None:
    """The start date of the conditional price in force now, if the model's price has changed over time."""
    if not isinstance(prices, list):
        return None
    found: date | None = None
    for cp in prices:
        constraint = getattr(cp, "constraint", None)
        start = getattr(constraint, "start_date", None)
        if isinstance(start, date) and start <= now.date() and (found is None or start > found):
            found = start
    return found


@lru_cache(maxsize=512)
def find(ref: str, provider_id: str | None = None) -> GenaiModel | None:
    """Look a model up by name (and provider, when known); `None` when genai-prices does not know it."""
    pkg = _package()
    if pkg is None:
        return None
    try:
        calc = pkg.calc_price(
            pkg.Usage(input_tokens=1, output_tokens=1), model_ref=ref, provider_id=provider_id
        )
    except LookupError:
        return None
    except Exception as exc:  # a data or validation error inside the package: treat the model as unknown
        log.warning("genai-prices could not price %r (%s); trying the next source", ref, exc)
        return None
    model = calc.model
    return GenaiModel(
        ref=ref,
        model_id=str(model.id),
        provider_id=str(calc.provider.id),
        price_date=_active_date(model.prices, datetime.now(UTC)),
        context_window=getattr(model, "context_window", None),
        version=version(),
    )


_PROVIDER_BY_PREFIX = (
    ("text-embedding", "openai"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("deepseek", "deepseek"),
    ("mistral", "mistral"),
)


def guess_provider(name: str) -> str | None:
    """genai-prices matches some models (embeddings) only within a named provider: the likely one, by name."""
    base = name.lower().rsplit("/", 1)[-1]
    return next((prov for prefix, prov in _PROVIDER_BY_PREFIX if base.startswith(prefix)), None)


def lookup(name: str) -> GenaiModel | None:
    """Find a model by name: with its `provider/` prefix, then alone, then with the provider its name implies."""
    prefix = name.split("/", 1)[0].lower() if "/" in name else None
    base = name.rsplit("/", 1)[-1]
    if prefix and (found := find(base, prefix)):
        return found
    if found := find(base):
        return found
    guess = guess_provider(base)
    return find(base, guess) if guess and guess != prefix else None


def cost(model: GenaiModel, usage: Usage) -> float:
    """Dollars of one call's usage (`input_tokens` includes cache reads and writes, as genai-prices expects)."""
    pkg = _package()
    assert pkg is not None  # a GenaiModel exists only when the package does
    total_in = max(usage.input_tokens, 0)
    read = min(max(usage.cached_tokens, 0), total_in)
    write = min(max(usage.cache_write_tokens, usage.cache_write_1h_tokens, 0), total_in - read)
    write_1h = min(max(usage.cache_write_1h_tokens, 0), write)
    counts: dict[str, int] = {"input_tokens": total_in, "output_tokens": max(usage.output_tokens, 0)}
    if read:
        counts["cache_read_tokens"] = read
    if write:
        counts["cache_write_tokens"] = write
    if write_1h:
        counts["cache_write_1h_tokens"] = write_1h
    context = {"processing": "batch"} if usage.batch else None
    calc = pkg.calc_price(
        pkg.Usage(**counts),
        model_ref=model.ref,
        provider_id=model.provider_id,
        price_context=context,
    )
    return float(calc.total_price)
