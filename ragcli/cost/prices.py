"""The price table: dollars per million tokens for each model, from one place.

Sources, strongest first: the config's `cost.prices` overrides, the table shipped with ragcli (`prices.yaml`), then
LiteLLM's bundled price file when litellm is installed (read as a JSON file; litellm is never imported). An unknown
model gets `usd=None` and a warning, never a silent zero.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from ragcli.config import CostConfig
from ragcli.types import Usage

log = logging.getLogger(__name__)

LITELLM_PRICE_FILE = "model_prices_and_context_window_backup.json"
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-preview)$")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens of one model."""

    model: str
    input: float
    output: float
    cached_input: float | None = None
    """Price of input tokens read from the provider's prompt cache; `None` means the same as `input`."""
    batch_discount: float = 0.0
    """Fraction taken off by the provider's batch API (0.5 = half price)."""
    context_window: int | None = None
    source: str = "shipped"
    """Where the price came from: `config`, `shipped` or `litellm`."""

    def cost(
        self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, batch: bool = False
    ) -> float:
        """Dollars for one call. `input_tokens` includes the cached ones (as OpenAI's `prompt_tokens` does)."""
        cached = min(max(cached_tokens, 0), max(input_tokens, 0))
        cached_price = self.input if self.cached_input is None else self.cached_input
        usd = (
            (input_tokens - cached) * self.input + cached * cached_price + output_tokens * self.output
        ) / 1e6
        return usd * (1.0 - self.batch_discount) if batch else usd


def _shipped() -> dict[str, Price]:
    text = importlib_resources.files("ragcli.cost").joinpath("prices.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return {name: _price(name, spec, "shipped") for name, spec in (data.get("models") or {}).items()}


def _price(name: str, spec: Mapping[str, Any], source: str) -> Price:
    return Price(
        model=name,
        input=float(spec["input"]),
        output=float(spec.get("output", 0.0)),
        cached_input=None if spec.get("cached_input") is None else float(spec["cached_input"]),
        batch_discount=float(spec.get("batch_discount", 0.0)),
        context_window=None if spec.get("context_window") is None else int(spec["context_window"]),
        source=source,
    )


def litellm_price_file() -> Path | None:
    """LiteLLM's bundled price JSON, found without importing litellm (importing it takes seconds)."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / LITELLM_PRICE_FILE
    return path if path.is_file() else None


def _litellm_prices(path: Path) -> dict[str, Price]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("could not read LiteLLM's price file %s (%s); using the shipped prices only", path, exc)
        return {}
    out: dict[str, Price] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or "input_cost_per_token" not in spec:
            continue
        try:
            cin = float(spec["input_cost_per_token"]) * 1e6
            cout = float(spec.get("output_cost_per_token") or 0.0) * 1e6
            cached = spec.get("cache_read_input_token_cost")
            batch_in = spec.get("input_cost_per_token_batches")
            window = spec.get("max_input_tokens") or spec.get("max_tokens")
            out[name] = Price(
                model=name,
                input=cin,
                output=cout,
                cached_input=None if cached is None else float(cached) * 1e6,
                batch_discount=(1.0 - float(batch_in) * 1e6 / cin)
                if batch_in is not None and cin > 0
                else 0.0,
                context_window=int(window) if isinstance(window, int | float) else None,
                source="litellm",
            )
        except (TypeError, ValueError):
            continue
    return out


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


class PriceTable:
    """Prices by model name. Build with `PriceTable.load(cfg.cost)`; look up with `price(model)`."""

    def __init__(
        self,
        prices: Mapping[str, Price],
        overrides: Mapping[str, Price] | None = None,
        litellm_file: Path | None = None,
    ) -> None:
        self._overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self._shipped = {k.lower(): v for k, v in prices.items()}
        self._litellm_file = litellm_file
        self._litellm: dict[str, Price] | None = None
        self._warned: set[str] = set()

    @classmethod
    def load(cls, cost_cfg: CostConfig | None = None) -> PriceTable:
        """The shipped table, the config's overrides on top, and LiteLLM's file (if installed and enabled)."""
        cost_cfg = cost_cfg or CostConfig.model_validate({})
        overrides = {
            name: Price(
                model=name,
                input=o.input,
                output=o.output,
                cached_input=o.cached_input,
                batch_discount=o.batch_discount,
                context_window=o.context_window,
                source="config",
            )
            for name, o in cost_cfg.prices.items()
        }
        litellm = litellm_price_file() if cost_cfg.use_litellm_prices else None
        return cls(_shipped(), overrides, litellm)

    def _litellm_table(self) -> dict[str, Price]:
        if self._litellm is None:
            # read lazily: the file is large, and most lookups hit the shipped table
            self._litellm = (
                {k.lower(): v for k, v in _litellm_prices(self._litellm_file).items()}
                if (self._litellm_file)
                else {}
            )
        return self._litellm

    def price(self, model: str) -> Price | None:
        """The price of a model, or `None` if no source knows it."""
        names = [n.lower() for n in candidate_names(model)]
        for table in (self._overrides, self._shipped):
            for n in names:
                if n in table:
                    return table[n]
        if self._litellm_file is not None:
            table = self._litellm_table()
            for n in [model.lower(), *names]:
                if n in table:
                    return table[n]
        return None

    def known(self, model: str) -> bool:
        return self.price(model) is not None

    def context_window(self, model: str) -> int | None:
        p = self.price(model)
        return p.context_window if p else None

    def usage_for(
        self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0, batch: bool = False
    ) -> Usage:
        """A `Usage` for one call, priced; `usd=None` (and one warning per model) when the price is unknown."""
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
            usd = p.cost(input_tokens, output_tokens, cached_tokens, batch)
        return Usage(
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=output_tokens,
            usd=usd,
            calls=1,
        )

    def estimate_usd(self, model: str, input_tokens: int, max_output_tokens: int) -> float | None:
        """The most a call can cost: all input uncached, every allowed output token used."""
        p = self.price(model)
        return None if p is None else p.cost(input_tokens, max_output_tokens)

    def models(self) -> list[Price]:
        """The shipped and configured prices (LiteLLM's are not listed: there are thousands)."""
        merged = {**self._shipped, **self._overrides}
        return sorted(merged.values(), key=lambda p: p.model)
