"""Prices from LiteLLM's bundled price JSON, read as a file: litellm itself is never imported (that takes seconds
and rewrites `TIKTOKEN_CACHE_DIR`). Used after genai-prices, for models genai-prices does not know."""

from __future__ import annotations

import importlib.util
import json
import logging
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ragcli.cost.price import Price

log = logging.getLogger(__name__)

LITELLM_PRICE_FILE = "model_prices_and_context_window_backup.json"
SOURCE = "litellm"


def litellm_price_file() -> Path | None:
    """LiteLLM's bundled price JSON, found without importing litellm."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / LITELLM_PRICE_FILE
    return path if path.is_file() else None


def _per_m(spec: dict[str, Any], key: str) -> float | None:
    value = spec.get(key)
    return None if value is None else float(value) * 1e6


def _file_date(path: Path) -> str:
    try:
        version = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        version = "?"
    day = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
    return f"litellm {version} bundled file of {day}"


def litellm_prices(path: Path) -> dict[str, Price]:
    """Every priced model of the file, by lowercased name (unreadable entries are skipped)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("could not read LiteLLM's price file %s (%s); skipping it", path, exc)
        return {}
    as_of = _file_date(path)
    out: dict[str, Price] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict) or "input_cost_per_token" not in spec:
            continue
        try:
            cin = float(spec["input_cost_per_token"]) * 1e6
            batch_in = _per_m(spec, "input_cost_per_token_batches")
            window = spec.get("max_input_tokens") or spec.get("max_tokens")
            out[name.lower()] = Price(
                model=name,
                input=cin,
                output=_per_m(spec, "output_cost_per_token") or 0.0,
                cached_input=_per_m(spec, "cache_read_input_token_cost"),
                cache_write=_per_m(spec, "cache_creation_input_token_cost"),
                cache_write_1h=_per_m(spec, "cache_creation_input_token_cost_above_1hr"),
                batch_discount=(1.0 - batch_in / cin) if batch_in is not None and cin > 0 else 0.0,
                context_window=int(window) if isinstance(window, int | float) else None,
                source=SOURCE,
                as_of=as_of,
            )
        except (TypeError, ValueError):
            continue
    return out
