"""Forecasts from the ledger's real token profile: what N queries a day cost under a model, what the recorded
calls would have cost under other prices (what-if replay), and when self-hosting breaks even.

The profile is measured, not assumed: per query, the mean LLM calls, input tokens (and the cached share),
output tokens and embedding tokens of the queries in the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ragcli.cost.ledger import recorded_usage
from ragcli.cost.ledger_reader import CallRecord
from ragcli.cost.prices import PriceTable
from ragcli.errors import InputError
from ragcli.types import Usage

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.4
LLM_STAGES = frozenset({"llm", "generate", "answer", "summarize", "summarise", "compress", "route", "verify"})
"""Stages whose calls a what-if replay reprices under another chat model (embeddings and rerankers keep theirs)."""


def is_llm(r: CallRecord) -> bool:
    return r.stage in LLM_STAGES or r.stage.startswith("llm")


@dataclass(frozen=True)
class Profile:
    """The mean token use of one query, from the ledger."""

    queries: int
    llm_calls: float
    input_tokens: float
    cached_tokens: float
    output_tokens: float
    embed_tokens: float
    llm_seconds: float
    """Mean seconds of LLM calls per query (for throughput)."""

    @property
    def cached_share(self) -> float:
        return self.cached_tokens / self.input_tokens if self.input_tokens else 0.0


def profile(calls: Iterable[CallRecord]) -> Profile:
    """The per-query token profile of the billed calls that belong to a query."""
    rows = [r for r in calls if r.billed and r.query_id]
    queries = {r.query_id for r in rows}
    n = len(queries)
    if not n:
        raise InputError(
            "the ledger has no queries to build a profile from; run some queries first (`ragcli query ...`)"
        )
    llm = [r for r in rows if is_llm(r)]
    embed = [r for r in rows if r.stage.startswith("embed")]
    return Profile(
        queries=n,
        llm_calls=len(llm) / n,
        input_tokens=sum(r.input_tokens for r in llm) / n,
        cached_tokens=sum(r.cached_tokens for r in llm) / n,
        output_tokens=sum(r.output_tokens for r in llm) / n,
        embed_tokens=sum(r.input_tokens for r in embed) / n,
        llm_seconds=sum(r.latency_s for r in llm) / n,
    )


@dataclass(frozen=True)
class Forecast:
    model: str
    queries_per_day: int
    usd_per_query: float | None
    """`None`: the model's price is unknown."""
    profile: Profile
    cached_share: float

    @property
    def usd_per_day(self) -> float | None:
        return None if self.usd_per_query is None else self.usd_per_query * self.queries_per_day

    @property
    def usd_per_month(self) -> float | None:
        return None if self.usd_per_day is None else self.usd_per_day * DAYS_PER_MONTH


def forecast(
    prof: Profile,
    prices: PriceTable,
    model: str,
    queries_per_day: int,
    *,
    cached_share: float | None = None,
    embed_model: str | None = None,
) -> Forecast:
    """Cost of `queries_per_day` queries with the profile's tokens, the LLM calls priced at `model`.

    `cached_share` (0-1) overrides the measured share of input tokens read from the provider's cache; embedding
    tokens are priced at `embed_model` when given (local embedders cost nothing).
    """
    if queries_per_day < 0:
        raise InputError(f"--queries-per-day must be >= 0, got {queries_per_day}")
    share = prof.cached_share if cached_share is None else cached_share
    if not 0.0 <= share <= 1.0:
        raise InputError(f"--cached-share must be between 0 and 1, got {share}")
    calls = max(prof.llm_calls, 1e-9)
    per_call = Usage(
        input_tokens=round(prof.input_tokens / calls),
        cached_tokens=round(prof.input_tokens * share / calls),
        output_tokens=round(prof.output_tokens / calls),
        calls=1,
    )
    usd = prices.priced(model, per_call).usd
    per_query = None if usd is None else usd * prof.llm_calls
    if per_query is not None and embed_model and prof.embed_tokens:
        emb = prices.priced(embed_model, Usage(input_tokens=round(prof.embed_tokens), calls=1)).usd
        per_query = None if emb is None else per_query + emb
    return Forecast(model, queries_per_day, per_query, prof, share)


@dataclass(frozen=True)
class Replay:
    """The recorded LLM calls repriced under another model: what they cost, and what they would have."""

    model: str
    calls: int
    recorded_usd: float
    recorded_unknown: int
    replayed_usd: float | None


def replay(calls: Iterable[CallRecord], prices: PriceTable, model: str) -> Replay:
    """Reprice every billed LLM call of the ledger at `model` with its own recorded token counts."""
    llm = [r for r in calls if r.billed and is_llm(r)]
    total: float | None = 0.0
    for r in llm:
        usd = prices.priced(model, recorded_usage(r, None)).usd
        total = None if usd is None or total is None else total + usd
    return Replay(
        model=model,
        calls=len(llm),
        recorded_usd=sum(r.usd or 0.0 for r in llm),
        recorded_unknown=sum(r.usd is None for r in llm),
        replayed_usd=total,
    )


@dataclass(frozen=True)
class BreakEven:
    """Self-hosting against an API at one query volume."""

    gpu_usd_per_hour: float
    tokens_per_second: float
    tokens_per_query: float
    capacity_queries_per_day: float
    """Queries one GPU (or node) serves a day at the measured throughput, busy around the clock."""
    self_host_usd_per_month: float
    api_usd_per_query: float | None
    break_even_queries_per_day: float | None
    """Above this many queries a day self-hosting is cheaper (if capacity allows; add nodes beyond it)."""


def break_even(
    gpu_usd_per_hour: float,
    tokens_per_second: float,
    tokens_per_query: float,
    api_usd_per_query: float | None,
) -> BreakEven:
    """Self-hosting cost (one node rented around the clock) against API prices, from a measured throughput."""
    if gpu_usd_per_hour <= 0 or tokens_per_second <= 0 or tokens_per_query <= 0:
        raise InputError(
            "--gpu-usd-per-hour, --tokens-per-second and the profile's tokens per query must be > 0 "
            f"(got {gpu_usd_per_hour}, {tokens_per_second}, {tokens_per_query})"
        )
    monthly = gpu_usd_per_hour * HOURS_PER_MONTH
    capacity = tokens_per_second * 86_400 / tokens_per_query
    be = None
    if api_usd_per_query:
        be = monthly / DAYS_PER_MONTH / api_usd_per_query
    return BreakEven(
        gpu_usd_per_hour, tokens_per_second, tokens_per_query, capacity, monthly, api_usd_per_query, be
    )


def measured_tokens_per_second(calls: Iterable[CallRecord]) -> float | None:
    """Prompt + output tokens per second of the local LLM calls in the ledger (their recorded latency)."""
    local = [r for r in calls if r.billed and is_llm(r) and r.latency_s > 0 and (r.usd or 0.0) == 0.0]
    seconds = sum(r.latency_s for r in local)
    return sum(r.input_tokens + r.output_tokens for r in local) / seconds if seconds else None
