"""The price table: what each model's tokens cost, from one place, with where each price came from.

Sources, strongest first:
1. the config's `cost.prices` (a user override always wins);
2. `prices.yaml` `local:` (models that run on your machine: free);
3. genai-prices, pydantic's maintained price database, from the data bundled in the installed package (offline);
4. LiteLLM's bundled price file, when litellm is installed (read as JSON, never imported);
5. `prices.yaml` `fallback:` (a dated hand-kept table, for models no maintained source knows).

An unknown model gets `usd=None` and a warning, never a silent zero.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from ragcli.config import CostConfig
from ragcli.cost import genai_price_source
from ragcli.cost.litellm_price_source import LITELLM_PRICE_FILE, litellm_price_file, litellm_prices
from ragcli.cost.price import Price
from ragcli.types import Usage

__all__ = ["LITELLM_PRICE_FILE", "Price", "PriceTable", "candidate_names", "litellm_price_file"]

log = logging.getLogger(__name__)

_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview)$")
_PROBE = 1000  # tokens per probe when reading a genai-prices model's base-tier rates (below every tier)


def _yaml_prices() -> tuple[dict[str, Price], dict[str, Price]]:
    text = importlib_resources.files("ragcli.cost").joinpath("prices.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    as_of = str(data.get("as_of", ""))
    local = {n: _price(n, s, "shipped", "local model") for n, s in (data.get("local") or {}).items()}
    fallback = {n: _price(n, s, "shipped", as_of) for n, s in (data.get("fallback") or {}).items()}
    return local, fallback


def _opt(spec: Mapping[str, Any], key: str) -> float | None:
    return None if spec.get(key) is None else float(spec[key])


def _price(name: str, spec: Mapping[str, Any], source: str, as_of: str) -> Price:
    return Price(
        model=name,
        input=float(spec["input"]),
        output=float(spec.get("output", 0.0)),
        cached_input=_opt(spec, "cached_input"),
        cache_write=_opt(spec, "cache_write"),
        cache_write_1h=_opt(spec, "cache_write_1h"),
        batch_discount=float(spec.get("batch_discount", 0.0)),
        context_window=None if spec.get("context_window") is None else int(spec["context_window"]),
        source=source,
        as_of=as_of,
    )


def candidate_names(model: str) -> list[str]:
    """Names to look a model up by: as given, lowercased, without a `provider/` prefix, without a date suffix."""
    names = [model, model.lower()]
    base = model.lower().rsplit("/", 1)[-1]
    names.append(base)
    stripped = base
    while True:
        shorter = _DATE_SUFFIX.sub("", stripped)
        if shorter == stripped:
            break
        stripped = shorter
        names.append(stripped)
    if base.endswith(".gguf"):
        names.append(base.removesuffix(".gguf"))
    return list(dict.fromkeys(names))


def _genai_price(found: genai_price_source.GenaiModel, name: str) -> Price:
    """A genai-prices model as a `Price`: its base-tier rates read by pricing small probe usages."""

    def per_m(**kw: Any) -> float:
        return genai_price_source.cost(found, Usage(calls=1, **kw)) * 1e6 / _PROBE

    full = per_m(input_tokens=_PROBE, output_tokens=_PROBE)
    batch = per_m(input_tokens=_PROBE, output_tokens=_PROBE, batch=True)
    since = f"since {found.price_date.isoformat()}, " if found.price_date else ""
    return Price(
        model=found.model_id,
        input=per_m(input_tokens=_PROBE),
        output=per_m(output_tokens=_PROBE),
        cached_input=per_m(input_tokens=_PROBE, cached_tokens=_PROBE),
        cache_write=per_m(input_tokens=_PROBE, cache_write_tokens=_PROBE),
        cache_write_1h=per_m(input_tokens=_PROBE, cache_write_tokens=_PROBE, cache_write_1h_tokens=_PROBE),
        batch_discount=round(1.0 - batch / full, 6) if full > 0 else 0.0,
        context_window=found.context_window,
        source=genai_price_source.SOURCE,
        as_of=f"{since}genai-prices {found.version} bundled data",
        provider=found.provider_id,
        genai=found,
    )


class PriceTable:
    """Prices by model name. Build with `PriceTable.load(cfg.cost)`; look up with `price(model)`."""

    def __init__(
        self,
        prices: Mapping[str, Price],
        overrides: Mapping[str, Price] | None = None,
        litellm_file: Path | None = None,
        *,
        fallback: Mapping[str, Price] | None = None,
        use_genai: bool = False,
    ) -> None:
        self._overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self._shipped = {k.lower(): v for k, v in prices.items()}
        self._fallback = {k.lower(): v for k, v in (fallback or {}).items()}
        self._litellm_file = litellm_file
        self._litellm: dict[str, Price] | None = None
        self._use_genai = use_genai
        self._found: dict[str, Price | None] = {}
        self._warned: set[str] = set()

    @classmethod
    def load(cls, cost_cfg: CostConfig | None = None) -> PriceTable:
        """Every source the config enables, the config's own prices on top."""
        cost_cfg = cost_cfg or CostConfig.model_validate({})
        overrides = {
            name: Price(
                model=name,
                input=o.input,
                output=o.output,
                cached_input=o.cached_input,
                cache_write=getattr(o, "cache_write", None),
                cache_write_1h=getattr(o, "cache_write_1h", None),
                batch_discount=o.batch_discount,
                context_window=o.context_window,
                source="config",
                as_of="your config (cost.prices)",
            )
            for name, o in cost_cfg.prices.items()
        }
        local, fallback = _yaml_prices()
        litellm = litellm_price_file() if cost_cfg.use_litellm_prices else None
        use_genai = bool(getattr(cost_cfg, "use_genai_prices", True))
        return cls(local, overrides, litellm, fallback=fallback, use_genai=use_genai)

    def _litellm_table(self) -> dict[str, Price]:
        if self._litellm is None:
            # read lazily: the file is large, and most lookups hit an earlier source
            self._litellm = litellm_prices(self._litellm_file) if self._litellm_file else {}
        return self._litellm

    def price(self, model: str) -> Price | None:
        """The price of a model, or `None` if no source knows it."""
        key = model.lower()
        if key not in self._found:
            self._found[key] = self._lookup(model)
        return self._found[key]

    def _lookup(self, model: str) -> Price | None:
        names = [n.lower() for n in candidate_names(model)]
        for table in (self._overrides, self._shipped):
            for n in names:
                if n in table:
                    return table[n]
        if self._use_genai and genai_price_source.available():
            for n in names:
                found = genai_price_source.lookup(n)
                if found is not None:
                    return _genai_price(found, n)
        if self._litellm_file is not None:
            table = self._litellm_table()
            for n in names:
                if n in table:
                    return table[n]
        for n in names:
            if n in self._fallback:
                return self._fallback[n]
        return None

    def known(self, model: str) -> bool:
        return self.price(model) is not None

    def context_window(self, model: str) -> int | None:
        p = self.price(model)
        return p.context_window if p else None

    def priced(self, model: str, usage: Usage) -> Usage:
        """The usage with its dollars set; `usd=None` (and one warning per model) when the price is unknown."""
        p = self.price(model)
        if p is None:
            if model not in self._warned:
                self._warned.add(model)
                log.warning(
                    "no price known for model %r: its cost is recorded as unknown; add it under cost.prices "
                    "in the config (dollars per million tokens: input, output)",
                    model,
                )
            usd: float | None = None
        else:
            usd = p.cost_of(usage)
        return Usage(
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            usd=usd,
            calls=usage.calls or 1,
            cache_write_tokens=usage.cache_write_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            batch=usage.batch,
        )

    def usage_for(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        batch: bool = False,
        *,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> Usage:
        """A priced `Usage` for one call from its token counts (see `Usage` for what each count includes)."""
        return self.priced(
            model,
            Usage(
                input_tokens,
                cached_tokens,
                output_tokens,
                None,
                1,
                cache_write_tokens=cache_write_tokens,
                cache_write_1h_tokens=cache_write_1h_tokens,
                reasoning_tokens=reasoning_tokens,
                batch=batch,
            ),
        )

    def estimate_usd(self, model: str, input_tokens: int, max_output_tokens: int) -> float | None:
        """The most a call can cost: all input uncached, every allowed output token used."""
        p = self.price(model)
        return None if p is None else p.cost(input_tokens, max_output_tokens)

    def models(self) -> list[Price]:
        """The local, fallback and configured prices (the maintained sources hold thousands: not listed)."""
        merged = {**self._fallback, **self._shipped, **self._overrides}
        return sorted(merged.values(), key=lambda p: p.model)
