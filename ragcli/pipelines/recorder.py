"""One recorder per query: each stage's trace entry, ledger row and budget reservation, written together.

    with rec.stage("rerank", reranker.model_name, estimate=Usage(usd=0.0)) as s:
        result = reranker.rerank(question, hits)
        s.usage = result.usage
        s.detail["kept"] = len(result.hits)

On entry the stage reserves `estimate.usd` from the query's budget (a refusal raises `BudgetExceeded` and writes a
`refused` ledger row, with no tokens and no dollars). On a clean exit it appends the trace entry, writes one ledger
row when the stage billed a call (`usage.calls > 0`), and settles the reservation with the real dollars. If the
stage raises, the reservation is released and nothing is billed: providers do not bill failed requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ragcli.cost.attribution import split_parts
from ragcli.cost.budget import QueryBudget
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.errors import BudgetExceeded
from ragcli.types import Scalar, StageTrace, Usage

if TYPE_CHECKING:
    from ragcli.cost.prices import PriceTable


@dataclass
class StageRun:
    """What a running stage reports back: its usage, the model that billed, and a few facts for the trace."""

    name: str
    model: str = ""
    provider: str = ""
    usage: Usage = field(default_factory=Usage)
    detail: dict[str, Scalar | None] = field(default_factory=dict)
    cached: bool = False
    """The answer came from a cache: the row shows it, so the saving can be reported."""
    parts: dict[str, int] = field(default_factory=dict)
    """An LLM call's prompt tokens per part (system, history, context, question): the ledger splits its dollars."""
    saved_usd: float = 0.0
    """Dollars a lever saved against the call it replaced (a cache hit: the original call repriced)."""
    lever: str = ""
    """The lever that saved them (`cache`, `routing`, ...)."""


class Recorder:
    """Writes the trace and the ledger of one query, and draws its paid calls from one budget.

    Args:
        ledger: where rows go (`None`: trace only, e.g. in an evaluation that must not bill).
        query_id: the id shared by every row of this query.
        budget: the query's budget (`None`: no limits).
        tenant: written on every row, for reports by tenant.
        trace: a list to append to (entries recorded before this query's first stage).
        prices: prices the split of an LLM call's dollars over its prompt parts (`None`: parts get no dollars).
        preset: the pipeline's name, written on every row, for reports by preset.
    """

    def __init__(
        self,
        ledger: Ledger | None,
        query_id: str,
        budget: QueryBudget | None = None,
        *,
        tenant: str = "",
        trace: list[StageTrace] | None = None,
        prices: PriceTable | None = None,
        preset: str = "",
    ) -> None:
        self.ledger = ledger
        self.query_id = query_id
        self.budget = budget or QueryBudget()
        self.tenant = tenant
        self.trace: list[StageTrace] = trace if trace is not None else []
        self.prices = prices
        self.preset = preset

    @contextmanager
    def stage(
        self,
        name: str,
        model: str = "",
        *,
        provider: str = "",
        estimate: Usage | None = None,
        hidden: bool = False,
    ) -> Iterator[StageRun]:
        """Run one stage; see the module docstring. `estimate=None` means the stage is free (no reservation)."""
        run = StageRun(name, model, provider)
        hold = None
        if estimate is not None:
            try:
                hold = self.budget.reserve(f"the {name} call", model, estimate.usd)
            except BudgetExceeded as exc:
                self._refused(run, hidden)
                self.trace.append(StageTrace(name, 0.0, Usage(), {"model": model, "refused": str(exc)}))
                raise
        t0 = time.perf_counter()
        try:
            yield run
        except BaseException:
            self.budget.release(hold)
            raise
        seconds = time.perf_counter() - t0
        self.budget.settle(hold, run.usage.usd)
        detail: dict[str, Scalar | None] = {"model": run.model} if run.model else {}
        detail.update(run.detail)
        self.trace.append(StageTrace(name, seconds, run.usage, detail))
        if run.usage.calls > 0 and self.ledger is not None:
            self.ledger.record(
                LedgerRow.of(
                    name,
                    run.model,
                    run.usage,
                    seconds,
                    self.query_id,
                    provider=run.provider,
                    cached=run.cached,
                    tenant=self.tenant,
                    hidden=hidden,
                    preset=self.preset,
                    saved_usd=run.saved_usd,
                    lever=run.lever,
                ),
                self._parts(run),
            )

    def _parts(self, run: StageRun) -> list[tuple[str, int, float | None]]:
        """An LLM call's tokens and dollars per prompt part (nothing for calls without parts)."""
        if not run.parts:
            return []
        price = self.prices.price(run.model) if self.prices is not None and run.model else None
        return split_parts(run.parts, run.usage, price)

    def note(self, name: str, seconds: float = 0.0, **detail: Scalar | None) -> None:
        """A trace entry for a step that calls no model (a decision, a skip)."""
        self.trace.append(StageTrace(name, seconds, Usage(), dict(detail)))

    @property
    def usage(self) -> Usage:
        """Everything this query has billed so far."""
        return sum((t.usage for t in self.trace), Usage())

    def _refused(self, run: StageRun, hidden: bool) -> None:
        if self.ledger is not None:
            row = LedgerRow.of(
                run.name,
                run.model,
                Usage(usd=0.0),
                0.0,
                self.query_id,
                provider=run.provider,
                status="refused",
                tenant=self.tenant,
                hidden=hidden,
                preset=self.preset,
            )
            self.ledger.record(row)
