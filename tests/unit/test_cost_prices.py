"""PriceTable: shipped prices, overrides, LiteLLM's file, unknown models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ragcli.config import CostConfig, PriceOverride
from ragcli.cost.prices import Price, PriceTable, candidate_names


def test_shipped_prices_cover_common_models() -> None:
    table = PriceTable.load(CostConfig(use_litellm_prices=False, use_genai_prices=False))
    for model in (
        "gpt-4o-mini",
        "gpt-4.1",
        "claude-sonnet-4-5",
        "deepseek-chat",
        "qwen-plus",
        "gemini-2.5-flash",
    ):
        p = table.price(model)
        assert p is not None and p.input > 0 and p.output > 0 and p.context_window, model
    local = table.price("smollm2-135m-instruct")
    assert local is not None and local.input == 0 and local.output == 0


def test_cost_of_a_call_counts_cached_and_batch() -> None:
    p = Price("m", input=2.0, output=8.0, cached_input=0.5, batch_discount=0.5)
    assert p.cost(1_000_000, 0) == pytest.approx(2.0)
    assert p.cost(1_000_000, 1_000_000, cached_tokens=500_000) == pytest.approx(1.0 + 0.25 + 8.0)
    assert p.cost(1_000_000, 0, batch=True) == pytest.approx(1.0)
    assert Price("m", input=2.0, output=0.0).cost(1000, 0, cached_tokens=1000) == pytest.approx(0.002)


def test_usage_for_a_known_model() -> None:
    table = PriceTable.load(CostConfig(use_litellm_prices=False, use_genai_prices=False))
    u = table.usage_for("gpt-4o-mini", 1000, 200)
    assert u.usd == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)
    assert (u.input_tokens, u.output_tokens, u.calls) == (1000, 200, 1)


def test_unknown_model_costs_unknown_not_zero_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable.load(CostConfig(use_litellm_prices=False, use_genai_prices=False))
    with caplog.at_level(logging.WARNING, logger="ragcli.cost.prices"):
        u = table.usage_for("my-private-model", 100, 10)
        table.usage_for("my-private-model", 100, 10)
    assert u.usd is None and u.input_tokens == 100
    warnings = [r for r in caplog.records if "my-private-model" in r.getMessage()]
    assert len(warnings) == 1 and "cost.prices" in warnings[0].getMessage()
    assert table.price("my-private-model") is None and table.estimate_usd("my-private-model", 1, 1) is None


def test_lookup_by_provider_prefix_and_date_suffix() -> None:
    table = PriceTable.load(CostConfig(use_litellm_prices=False, use_genai_prices=False))
    for name, expect in (
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("GPT-4O-MINI", "gpt-4o-mini"),
    ):
        p = table.price(name)
        assert p is not None and p.model == expect, name
    assert "gpt-4o" in candidate_names("openai/gpt-4o-2024-08-06")


def test_config_overrides_win_and_add_models() -> None:
    cfg = CostConfig(
        use_litellm_prices=False,
        use_genai_prices=False,
        prices={
            "gpt-4o-mini": PriceOverride(input=1.0, output=2.0),
            "my-vllm-model": PriceOverride(input=0, output=0),
        },
    )
    table = PriceTable.load(cfg)
    p = table.price("gpt-4o-mini")
    assert p is not None and p.input == 1.0 and p.source == "config"
    assert table.usage_for("my-vllm-model", 500, 500).usd == 0.0


def test_litellm_file_is_read_without_importing_litellm(tmp_path: Path) -> None:
    data = {
        "sample_spec": {"max_tokens": "set to max"},
        "exotic-model-x": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 3e-6,
            "cache_read_input_token_cost": 1e-7,
            "max_input_tokens": 32000,
            "input_cost_per_token_batches": 5e-7,
        },
        "gpt-4o-mini": {"input_cost_per_token": 9e-6, "output_cost_per_token": 9e-6},
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    from ragcli.cost.prices import _yaml_prices

    local, fallback = _yaml_prices()
    table = PriceTable(local, {}, litellm_file=path, fallback=fallback)
    p = table.price("exotic-model-x")
    assert p is not None and p.source == "litellm"
    assert (
        p.input == pytest.approx(1.0)
        and p.output == pytest.approx(3.0)
        and p.cached_input == pytest.approx(0.1)
    )
    assert p.batch_discount == pytest.approx(0.5) and p.context_window == 32000
    maintained = table.price("gpt-4o-mini")
    assert maintained is not None and maintained.source == "litellm"  # a maintained source beats the fallback
    assert table.price("qwen-max") is not None and table.price("qwen-max").source == "shipped"  # type: ignore[union-attr]


def test_broken_litellm_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "prices.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert PriceTable({}, {}, litellm_file=path).price("nope") is None
    assert "LiteLLM" in caplog.text


# ---------------------------------------------------------------- genai-prices (issue 13)

genai = pytest.importorskip("genai_prices", reason="genai-prices is not installed")


def _table(**kw: object) -> PriceTable:
    return PriceTable.load(CostConfig(use_litellm_prices=False, **kw))  # type: ignore[arg-type]


def test_genai_prices_work_offline_and_say_where_and_when() -> None:
    p = _table().price("gpt-4o-mini")
    assert p is not None and p.source == "genai-prices" and p.provider == "openai"
    assert p.input == pytest.approx(0.15) and p.output == pytest.approx(0.60)
    assert p.cached_input == pytest.approx(0.075) and p.batch_discount == pytest.approx(0.5)
    assert "genai-prices" in p.as_of and genai.__version__ in p.as_of


def test_anthropic_rates_from_genai_prices_include_both_cache_write_ttls() -> None:
    p = _table().price("claude-sonnet-4-5-20250929")
    assert p is not None and p.source == "genai-prices"
    assert (p.input, p.cached_input, p.cache_write, p.cache_write_1h, p.output) == pytest.approx(
        (3.0, 0.30, 3.75, 6.0, 15.0)
    )


def test_config_override_beats_genai_prices_and_local_models_are_free() -> None:
    table = _table(prices={"gpt-4o-mini": PriceOverride(input=1.0, output=2.0)})
    p = table.price("gpt-4o-mini")
    assert p is not None and p.source == "config" and p.input == 1.0
    local = table.price("smollm2-135m-instruct")
    assert local is not None and local.source == "shipped" and local.as_of == "local model"


def test_fallback_covers_what_genai_prices_lacks_and_unknown_stays_unknown() -> None:
    table = _table()
    qwen = table.price("qwen-plus")
    assert qwen is not None and qwen.source == "shipped" and qwen.as_of == "2025-10"
    assert table.price("my-private-model") is None
    assert table.usage_for("my-private-model", 10, 10).usd is None


def test_long_context_tier_is_applied_by_genai_prices() -> None:
    table = _table()
    short = table.usage_for("claude-sonnet-4-5", 100_000, 0).usd
    long = table.usage_for("claude-sonnet-4-5", 300_000, 0).usd
    assert short == pytest.approx(0.3)
    assert long is not None and long > 3 * short  # above 200k tokens every token pays the long-context rate
