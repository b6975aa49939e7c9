"""Tiers in the config, rules before the learned router, and the cascade's grounding check."""

from __future__ import annotations

import pytest

from ragcli.config import RouteRuleConfig, parse_config
from ragcli.errors import ConfigError
from ragcli.generation.grounding_check import GroundingCheck
from ragcli.generation.tier_router import RouteFacts, TierRouter

TIERS = ["smollm2-135m-instruct", "gpt-4o-mini", "gpt-4o"]


def test_config_tiers_and_router_section_parse() -> None:
    cfg = parse_config(
        {
            "tiers": [{"type": "scripted"}, {"type": "openai", "model": "gpt-4o-mini"}],
            "router": {
                "rules": [
                    {"tier": 1, "question_matches": r"\bcompare\b"},
                    {"tier": "scripted", "has_filter": True},
                ],
                "model": "mine",
                "target": {"strong_share": 0.3},
                "cascade": {"enabled": True, "min_word_overlap": 0.5},
            },
        }
    )
    assert len(cfg.tiers) == 2 and cfg.router.target is not None and cfg.router.target.strong_share == 0.3
    assert parse_config({}).tiers == [] and parse_config({}).router.model is None


@pytest.mark.parametrize(
    ("router", "message"),
    [
        ({"target": {"strong_share": 0.3, "quality_floor": 0.9}}, "exactly one"),
        ({"rules": [{"tier": 0, "question_matches": "("}]}, "regular expression"),
        ({"cascade": {"check": "vibes"}}, "cascade.check"),
    ],
)
def test_router_config_errors(router: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"router": router})


def test_rules_first_match_wins() -> None:
    rules = [
        RouteRuleConfig(tier="gpt-4o", budget_left_below_usd=None, question_matches=r"\bwhy\b"),
        RouteRuleConfig(tier=0, budget_left_below_usd=0.01),
        RouteRuleConfig(tier=1, prompt_tokens_above=1000),
        RouteRuleConfig(tier=1, has_filter=True),
    ]
    r = TierRouter(TIERS, rules)
    assert r.route(RouteFacts("Why is the sky blue?", prompt_tokens=5000)).tier == 2
    assert r.route(RouteFacts("what", prompt_tokens=5000, budget_left_usd=0.001)).reason == "rule 1"
    assert r.route(RouteFacts("what", prompt_tokens=5000, budget_left_usd=1.0)).tier == 1
    assert r.route(RouteFacts("what", has_filter=True)).tier == 1
    assert r.route(RouteFacts("what")).reason == "default (cheapest)"
    assert TierRouter(["only"]).route(RouteFacts("x")).reason == "single tier"


def test_rule_naming_an_unknown_tier() -> None:
    with pytest.raises(ConfigError, match=r"router.rules\[0\].tier: tier 'gpt-9'"):
        TierRouter(TIERS, [RouteRuleConfig(tier="gpt-9")])


CONTEXT = "[1] Paris is the capital of France.\n[2] The Seine flows through Paris."


@pytest.mark.parametrize(
    ("answer", "ok", "reason"),
    [
        ("Paris is the capital of France [1].", True, "grounded"),
        ("Paris is the capital of France.", False, "no packed source is cited"),
        ("Paris is the capital [7].", False, "no packed source is cited"),
        ("Lyon hosts the Bundestag and Berlin elections [1].", False, "content words"),
        ("I don't know: the sources do not say [1].", False, "cannot answer"),
        ("", False, "empty"),
    ],
)
def test_grounding_check(answer: str, ok: bool, reason: str) -> None:
    result = GroundingCheck(0.6).check(answer, CONTEXT, n_sources=2)
    assert result.ok is ok and reason in result.reason


def test_config_refuses_rules_for_missing_tiers_and_twin_tier_names() -> None:
    tiers = [{"type": "openai", "model": "gpt-4o-mini"}, {"type": "openai", "model": "gpt-4o"}]
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {"tiers": tiers, "router": {"rules": [{"tier": 5}, {"tier": "gpt-9"}, {"tier": "gpt-4o"}]}}
        )
    problems = "\n".join(exc.value.problems)
    assert (
        "router.rules[0].tier: tier 5 is not" in problems and "router.rules[1].tier: tier 'gpt-9'" in problems
    )
    assert "rules[2]" not in problems
    with pytest.raises(ConfigError, match="problem") as twin:
        parse_config({"tiers": [tiers[0], tiers[0]]})
    assert "tiers[1].model: 'gpt-4o-mini' is also tiers[0]" in twin.value.problems[0]


def test_a_router_trained_on_other_models_is_used_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    other: Any = SimpleNamespace(tiers=["mixtral", "gpt-4"])
    with caplog.at_level("WARNING"):
        TierRouter(["smollm2", "gpt-4o"], learned=cast(Any, other))
    assert "trained on the outcomes of ['mixtral', 'gpt-4']" in caplog.text
    caplog.clear()
    same: Any = SimpleNamespace(tiers=["smollm2", "gpt-4o"])
    TierRouter(["smollm2", "gpt-4o"], learned=same)
    assert "trained on the outcomes" not in caplog.text
