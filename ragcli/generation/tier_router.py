"""Picks the tier that answers a query: config rules first, then the learned router, else the cheapest tier.

Rules are plain conditions on what is known before any model runs (budget left, prompt tokens, a filter, a
question pattern); the first rule whose conditions all hold decides. The decision carries its reason, so the
trace can say why a tier answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragcli.errors import ConfigError
from ragcli.types import Scalar

if TYPE_CHECKING:
    from pathlib import Path

    from ragcli.config import PipelineConfig, RouteRuleConfig
    from ragcli.generation.learned_router import LearnedRouter
    from ragcli.ingest.protocols import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteFacts:
    """What a rule can look at."""

    question: str
    prompt_tokens: int = 0
    budget_left_usd: float | None = None
    has_filter: bool = False


@dataclass(frozen=True)
class RouteDecision:
    """The tier chosen (index into the tier list, 0 = cheapest) and why."""

    tier: int
    reason: str
    """`single tier`, `rule N`, `router`, or `default (cheapest)`."""
    detail: dict[str, Scalar | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Rule:
    tier: int
    budget_left_below_usd: float | None
    prompt_tokens_above: int | None
    prompt_tokens_below: int | None
    has_filter: bool | None
    pattern: re.Pattern[str] | None

    def holds(self, f: RouteFacts) -> bool:
        if self.budget_left_below_usd is not None and not (
            f.budget_left_usd is not None and f.budget_left_usd < self.budget_left_below_usd
        ):
            return False
        if self.prompt_tokens_above is not None and not f.prompt_tokens > self.prompt_tokens_above:
            return False
        if self.prompt_tokens_below is not None and not f.prompt_tokens < self.prompt_tokens_below:
            return False
        if self.has_filter is not None and f.has_filter != self.has_filter:
            return False
        return not (self.pattern is not None and not self.pattern.search(f.question))


def tier_index(ref: int | str, tiers: Sequence[str], where: str) -> int:
    """A tier reference (index or model name) as an index; `ConfigError` naming the valid ones otherwise."""
    if isinstance(ref, int):
        if 0 <= ref < len(tiers):
            return ref
    elif ref in tiers:
        return tiers.index(ref)
    raise ConfigError(
        f"{where}: tier {ref!r} is not one of the tiers {list(tiers)} (or an index 0..{len(tiers) - 1})"
    )


class TierRouter:
    """Rules, then a learned router, then the cheapest tier.

    Args:
        tiers: Model names of the tiers, cheapest first.
        rules: The config's `router.rules`.
        learned: A loaded `LearnedRouter`; its tiers must match `tiers` by count.
    """

    def __init__(
        self,
        tiers: Sequence[str],
        rules: Sequence[RouteRuleConfig] = (),
        learned: LearnedRouter | None = None,
    ) -> None:
        if not tiers:
            raise ConfigError("a router needs at least one tier")
        self.tiers = list(tiers)
        self._rules = [
            _Rule(
                tier=tier_index(r.tier, self.tiers, f"router.rules[{i}].tier"),
                budget_left_below_usd=r.budget_left_below_usd,
                prompt_tokens_above=r.prompt_tokens_above,
                prompt_tokens_below=r.prompt_tokens_below,
                has_filter=r.has_filter,
                pattern=re.compile(r.question_matches, re.IGNORECASE) if r.question_matches else None,
            )
            for i, r in enumerate(rules)
        ]
        if learned is not None and len(learned.tiers) != len(self.tiers):
            raise ConfigError(
                f"router.model was trained for {len(learned.tiers)} tiers ({learned.tiers}) but the config has "
                f"{len(self.tiers)} ({self.tiers}); retrain it (`ragcli train router`) or fix `tiers`"
            )
        if learned is not None and list(learned.tiers) != self.tiers:
            log.warning(
                "router.model was trained on the outcomes of %s, but the tiers are %s; its scores and threshold "
                "carry over only as far as those models are alike (`ragcli router report`); retrain it on your "
                "tiers' labels with `ragcli train router`",
                list(learned.tiers),
                self.tiers,
            )
        self.learned = learned

    @classmethod
    def from_config(
        cls, cfg: PipelineConfig, tiers: Sequence[str], home: Path, embedder: Embedder | None = None
    ) -> TierRouter:
        """The config's rules and trained router (`router.model`, recalibrated to `router.target` when set).

        `embedder` is reused when it is the model the router was trained on (saves loading it twice)."""
        learned = None
        if cfg.router.model and len(tiers) > 1:
            from ragcli.generation.learned_router import LearnedRouter

            target = cfg.router.target.model_dump(exclude_none=True) if cfg.router.target else None
            learned = LearnedRouter.load(cfg.router.model, home, target=target)
            if embedder is not None:
                learned.share_embedder(embedder)
        return cls(tiers, cfg.router.rules, learned)

    def route(self, facts: RouteFacts) -> RouteDecision:
        """The tier for one query, with the reason and the scores behind it."""
        if len(self.tiers) == 1:
            return RouteDecision(0, "single tier")
        for i, rule in enumerate(self._rules):
            if rule.holds(facts):
                return RouteDecision(rule.tier, f"rule {i}", {"rule": i})
        if self.learned is not None:
            choice = self.learned.route(facts.question)
            detail: dict[str, Scalar | None] = {
                "router_deficit": round(choice.deficit, 4),
                "router_threshold": round(choice.threshold, 4),
                "router_rule": choice.rule,
            }
            for name, p in zip(self.learned.tiers, choice.probs, strict=True):
                detail[f"p_good[{name}]"] = round(p, 4)
            if self.learned.lm is not None:
                detail["router_lm_view"] = self.learned.lm.spec.name
            return RouteDecision(choice.tier, "router", detail)
        return RouteDecision(0, "default (cheapest)")
