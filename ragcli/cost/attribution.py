"""Who spent what: ledger totals by stage, model, tenant, preset, day or prompt part, and how a call's dollars
split across its prompt parts.

A call's dollars are split across its parts so that they add up exactly to what the call cost: the provider's
prefix cache reads the prompt from its start, so cached tokens are given to the parts in prompt order (system,
history, context, question), cache writes next, and the rest is plain input; each part is weighted by what its
tokens cost at those rates, and the output by the output rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ragcli.cost.ledger_reader import PART_NAMES, CallRecord, PartRecord
from ragcli.cost.price import Price
from ragcli.errors import InputError
from ragcli.types import Usage

By = Literal["part", "stage", "model", "tenant", "day", "preset", "provider"]
BY: tuple[By, ...] = ("day", "model", "stage", "part", "tenant", "preset", "provider")
UNATTRIBUTED = "unattributed"
"""Calls recorded without prompt parts (embeddings, rerankers, older ledgers), kept whole."""


@dataclass
class Group:
    """Totals of one group. `usd` sums the known dollars; `unknown_cost_calls` says how many calls it leaves out."""

    key: str
    calls: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    unknown_cost_calls: int = 0
    hidden_calls: int = 0
    refused_calls: int = 0
    saved_usd: float = 0.0
    queries: set[str] = field(default_factory=set)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, r: CallRecord) -> None:
        if not r.billed:
            self.refused_calls += 1
            return
        self.calls += 1
        self.input_tokens += r.input_tokens
        self.cached_tokens += r.cached_tokens
        self.cache_write_tokens += r.cache_write_tokens
        self.output_tokens += r.output_tokens
        self.saved_usd += r.saved_usd
        self.hidden_calls += int(r.hidden)
        if r.usd is None:
            self.unknown_cost_calls += 1
        else:
            self.usd += r.usd
        if r.query_id:
            self.queries.add(r.query_id)


def split_parts(
    parts: Mapping[str, int], usage: Usage, price: Price | None
) -> list[tuple[str, int, float | None]]:
    """A call's (part, tokens, dollars), its input parts scaled to the billed input tokens, plus `output`.

    `parts` are the counted tokens of each prompt part (system, history, context, question); the chat format's
    framing tokens the counts miss are spread over the parts in proportion. Dollars add up to `usage.usd`.
    """
    order = [p for p in PART_NAMES if p != "output" and parts.get(p, 0) > 0]
    counted = sum(parts[p] for p in order)
    billed = max(usage.input_tokens, 0)
    tokens: dict[str, int] = {}
    if counted and billed:
        for p in order:
            tokens[p] = billed * parts[p] // counted
        tokens[order[-1]] += billed - sum(tokens.values())  # rounding remainder
    elif billed:
        tokens[UNATTRIBUTED] = billed
    tokens["output"] = max(usage.output_tokens, 0)
    if usage.usd is None or price is None:
        return [(p, n, None if usage.usd is None else 0.0) for p, n in tokens.items()]
    read_left, write_left = usage.cached_tokens, usage.cache_write_tokens
    weights: dict[str, float] = {}
    for p, n in tokens.items():
        if p == "output":
            weights[p] = price.cost_of(Usage(output_tokens=n, calls=1, batch=usage.batch))
            continue
        read = min(read_left, n)
        write = min(write_left, n - read)
        read_left, write_left = read_left - read, write_left - write
        weights[p] = price.cost_of(
            Usage(input_tokens=n, cached_tokens=read, cache_write_tokens=write, calls=1, batch=usage.batch)
        )
    total_w = sum(weights.values())
    return [(p, n, usage.usd * weights[p] / total_w if total_w > 0 else 0.0) for p, n in tokens.items()]


def group_calls(calls: Iterable[CallRecord], by: By) -> list[Group]:
    """Totals by stage, model, tenant, day, preset or provider, sorted by key (days oldest first)."""
    if by not in BY or by == "part":
        raise InputError(
            f"cannot group calls by {by!r}; use one of: {', '.join(b for b in BY if b != 'part')}"
        )
    groups: dict[str, Group] = {}
    for r in calls:
        key = str(getattr(r, by) if by != "day" else r.day) or "(none)"
        groups.setdefault(key, Group(key)).add(r)
    return sorted(groups.values(), key=lambda g: g.key)


def group_parts(calls: Iterable[CallRecord], parts: Iterable[PartRecord]) -> list[Group]:
    """Tokens and dollars by prompt part (system, history, context, question, output, and `unattributed`).

    Calls recorded with parts are split by them; other billed model calls (embeddings, rerankers, calls written
    by older versions) stay whole under `unattributed`, so the dollars add up to the ledger's.
    """
    by_call: dict[int, list[PartRecord]] = {}
    for p in parts:
        by_call.setdefault(p.call_id, []).append(p)
    groups: dict[str, Group] = {}
    for r in calls:
        if not r.billed or (r.input_tokens == 0 and r.output_tokens == 0):
            continue
        recorded = by_call.get(r.id)
        # (part, input tokens, output tokens, dollars); a call without parts stays whole, as `unattributed`
        pieces: list[tuple[str, int, int, float | None]] = (
            [
                (p.part, 0 if p.part == "output" else p.tokens, p.tokens if p.part == "output" else 0, p.usd)
                for p in recorded
            ]
            if recorded
            else [(UNATTRIBUTED, r.input_tokens, r.output_tokens, r.usd)]
        )
        for name, tokens_in, tokens_out, usd in pieces:
            g = groups.setdefault(name, Group(name))
            g.calls += 1
            g.input_tokens += tokens_in
            g.output_tokens += tokens_out
            if usd is None:
                g.unknown_cost_calls += 1
            else:
                g.usd += usd
            g.hidden_calls += int(r.hidden)
            if r.query_id:
                g.queries.add(r.query_id)
    order = {name: i for i, name in enumerate((*PART_NAMES, UNATTRIBUTED))}
    return sorted(groups.values(), key=lambda g: (order.get(g.key, 99), g.key))


def total_of(groups: Iterable[Group]) -> Group:
    """The sum of groups (queries as a union)."""
    t = Group("total")
    for g in groups:
        t.calls += g.calls
        t.input_tokens += g.input_tokens
        t.cached_tokens += g.cached_tokens
        t.cache_write_tokens += g.cache_write_tokens
        t.output_tokens += g.output_tokens
        t.usd += g.usd
        t.unknown_cost_calls += g.unknown_cost_calls
        t.hidden_calls += g.hidden_calls
        t.refused_calls += g.refused_calls
        t.saved_usd += g.saved_usd
        t.queries |= g.queries
    return t
