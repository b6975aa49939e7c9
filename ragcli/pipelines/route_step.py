"""The routing steps of the query path: pick the tier (`route`), then answer with it and escalate on a failed
check (`generate_routed`, the cascade).

    route(question, prepared, stages, opts, rec) -> Routed          rules, then the learned router, else tier 0
    generate_routed(prepared, routed, stages, opts, rec) -> Completion   tier by tier while the check fails

Every attempt is the query pipeline's `generate` step: one `llm` stage, one ledger row, priced at its own tier
and reserved from the query's one budget before the call. A refused escalation keeps the answer already paid
for and says so in the trace.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from ragcli.errors import BackendError, BudgetExceeded
from ragcli.generation.grounding_check import GroundingCheck
from ragcli.generation.protocols import LLM
from ragcli.generation.tier_router import RouteDecision, RouteFacts
from ragcli.pipelines.query_pipeline import Prepared, QueryOptions, generate
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages
from ragcli.types import Completion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    """The tier that answers first, its model, and why it was chosen."""

    tier: int
    llm: LLM
    decision: RouteDecision


def route(question: str, prepared: Prepared, stages: Stages, opts: QueryOptions, rec: Recorder) -> Routed:
    """Pick the first tier for a query; the trace entry `route` says which and why (with several tiers)."""
    t0 = time.perf_counter()
    facts = RouteFacts(
        question=question,
        prompt_tokens=int(prepared.parts.get("total", 0)),
        budget_left_usd=rec.budget.remaining_usd,
        has_filter=opts.where is not None,
    )
    decision = stages.tier_router.route(facts)
    llm = stages.tiers[decision.tier]
    if len(stages.tiers) > 1:  # with one tier the `llm` entry already says which model answered
        rec.note(
            "route",
            time.perf_counter() - t0,
            tier=decision.tier,
            model=llm.model_name,
            reason=decision.reason,
            **decision.detail,
        )
    stages.route_log.record_route(
        rec.query_id, question, llm.model_name, llm.model_name, decision.reason, tenant=opts.tenant
    )
    return Routed(decision.tier, llm, decision)


def generate_routed(
    prepared: Prepared, routed: Routed, stages: Stages, opts: QueryOptions, rec: Recorder
) -> Completion:
    """Answer with the routed tier; with `router.cascade.enabled`, escalate tier by tier while the answer fails
    the grounding check. Attempts that may be escalated are not streamed; the kept answer is sent at once."""
    cfg = stages.config.router.cascade
    tiers = stages.tiers
    last_tier = len(tiers) - 1
    if not cfg.enabled or routed.tier >= last_tier:
        return generate(prepared, stages, opts, rec, llm=routed.llm)
    check = GroundingCheck(
        cfg.min_word_overlap, require_citation=cfg.require_citation, fail_on_refusal=cfg.escalate_on_refusal
    )
    quiet = replace(opts, on_token=None)
    kept: Completion | None = None
    streamed = False
    for step, tier in enumerate(range(routed.tier, last_tier + 1)):
        llm = tiers[tier]
        final = tier == last_tier
        try:
            completion = generate(prepared, stages, opts if final else quiet, rec, llm=llm)
        except BudgetExceeded as exc:
            if kept is None:
                raise
            rec.note(
                "cascade", step=step, tier=tier, model=llm.model_name, escalation="refused", reason=str(exc)
            )
            break
        kept, streamed = completion, final and opts.on_token is not None
        if final:
            rec.note("cascade", step=step, tier=tier, model=llm.model_name, check="not run (strongest tier)")
            break
        result = check.check(completion.text, prepared.context.text, len(prepared.context.citations))
        rec.note(
            "cascade",
            step=step,
            tier=tier,
            model=llm.model_name,
            check="pass" if result.ok else "fail",
            reason=result.reason,
            overlap=round(result.overlap, 3),
            cited=result.cited,
        )
        if result.ok:
            break
    if kept is None:  # unreachable: the first attempt either returns or raises
        raise BackendError("the cascade made no attempt")
    if opts.on_token is not None and not streamed:
        opts.on_token(kept.text)
    return kept
