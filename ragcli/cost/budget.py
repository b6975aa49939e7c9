"""One budget per query that every paid call reserves from before it runs, and shared daily limits.

Every paid stage (query embedding, rerank, router, summariser, each LLM call of a cascade) asks the query's
`QueryBudget` for its worst-case cost *before* the call, priced at the model that will bill. The reservation is
held against the per-query limit and, atomically, against the shared limits (per day, per tenant and day) in a
`BudgetStore`; after the call it is settled with the real usage. A call that would go over any limit is refused
before it is made (`BudgetExceeded`), and a call whose price is unknown is refused while a dollar limit is set:
an unknown price cannot be checked.

Shared limits live in the ledger's SQLite file (`SqliteBudgetStore`): a writer takes SQLite's write lock
(`BEGIN IMMEDIATE`) to check and hold in one step, so threads and processes on one machine never spend past a
limit together. A process killed between reserve and settle leaves its hold at the estimate: the limit errs on the
safe side until the day rolls over.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ragcli.config import CostConfig
from ragcli.cost.protocols import BudgetStore, Limit
from ragcli.errors import BudgetExceeded
from ragcli.state.sqlite_file import open_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_holds (
    hold_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    usd REAL NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (hold_id, scope)
);
CREATE INDEX IF NOT EXISTS budget_holds_scope ON budget_holds (scope);
"""

EPSILON_USD = 1e-12
"""Float slack when comparing sums of dollars with a limit."""


class SqliteBudgetStore:
    """Shared limits in a SQLite file (the ledger's, by default). Safe across threads and processes."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._db = open_wal(
            self.path,
            what="the budget store",
            fix="point cost.ledger at another file",
            schema=lambda db: db.executescript(_SCHEMA),
            timeout_s=busy_timeout_s,
        )

    def reserve(self, hold_id: str, limits: Sequence[Limit], usd: float) -> None:
        """Hold `usd` against every limit in one transaction, or raise `BudgetExceeded` and hold nothing."""
        if not limits:
            return
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock: no other writer between check and hold
            try:
                for limit in limits:
                    spent = self._spent(limit.scope)
                    if spent + usd > limit.usd + EPSILON_USD:
                        raise BudgetExceeded(
                            f"this call could cost up to ${usd:.6f}, and ${spent:.6f} of {limit.label} is "
                            "already spent or held; wait for the limit to reset, or raise it in the config"
                        )
                self._db.executemany(
                    "INSERT INTO budget_holds (hold_id, scope, usd, ts) VALUES (?,?,?,?)",
                    [(hold_id, limit.scope, usd, now) for limit in limits],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def settle(self, hold_id: str, usd: float) -> None:
        with self._lock:
            self._db.execute("UPDATE budget_holds SET usd = ? WHERE hold_id = ?", (usd, hold_id))

    def release(self, hold_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM budget_holds WHERE hold_id = ?", (hold_id,))

    def spent(self, scope: str) -> float:
        with self._lock:
            return self._spent(scope)

    def _spent(self, scope: str) -> float:
        row = self._db.execute("SELECT coalesce(sum(usd), 0) FROM budget_holds WHERE scope = ?", (scope,))
        return float(row.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class Hold:
    """Dollars reserved for one call, until it is settled or released."""

    id: str
    usd: float


def shared_limits(cost: CostConfig, tenant: str = "", day: str | None = None) -> list[Limit]:
    """The shared limits a query of `tenant` draws on today (UTC), from `cost.budgets`."""
    day = day or datetime.now(UTC).date().isoformat()
    b = cost.budgets
    limits: list[Limit] = []
    if b.per_day_usd is not None:
        limits.append(Limit(f"day:{day}", b.per_day_usd, f"cost.budgets.per_day_usd (${b.per_day_usd})"))
    if b.per_tenant_day_usd is not None and tenant:
        limits.append(
            Limit(
                f"tenant:{tenant}:day:{day}",
                b.per_tenant_day_usd,
                f"cost.budgets.per_tenant_day_usd (${b.per_tenant_day_usd}) for tenant {tenant!r}",
            )
        )
    return limits


class QueryBudget:
    """The dollars one query may spend: its own limit plus the shared ones. One per query, never shared.

    Args:
        max_usd: the per-query limit (`None`: none).
        store: where shared limits are kept; needed only when `limits` is not empty.
        limits: shared limits this query also draws on (see `shared_limits`).
    """

    def __init__(
        self, max_usd: float | None = None, store: BudgetStore | None = None, limits: Sequence[Limit] = ()
    ) -> None:
        if max_usd is not None and max_usd < 0:
            raise ValueError(f"max_usd must be >= 0 or None, got {max_usd}")
        if limits and store is None:
            raise ValueError("shared limits need a BudgetStore to keep them in")
        self.max_usd = max_usd
        self.store = store
        self.limits = list(limits)
        self.spent_usd = 0.0
        self.held_usd = 0.0

    @classmethod
    def from_config(cls, cost: CostConfig, store: BudgetStore | None, tenant: str = "") -> QueryBudget:
        per_query = cost.budgets.per_query_usd
        if per_query is None:
            per_query = cost.max_usd_per_query
        limits = shared_limits(cost, tenant)
        return cls(per_query, store if limits else None, limits)

    @property
    def limited(self) -> bool:
        """Whether any dollar limit applies (then an unknown price is refused)."""
        return self.max_usd is not None or bool(self.limits)

    @property
    def remaining_usd(self) -> float | None:
        """Dollars left under the per-query limit (`None`: no per-query limit)."""
        return None if self.max_usd is None else max(0.0, self.max_usd - self.spent_usd - self.held_usd)

    def reserve(self, what: str, model: str, estimate_usd: float | None) -> Hold | None:
        """Reserve the most a call can cost before it runs; `None` when nothing needs holding.

        Raises:
            BudgetExceeded: a limit would be exceeded, or the price is unknown while a limit is set.
        """
        if not self.limited:
            return None
        if estimate_usd is None:
            named = (
                f"cost.budgets.per_query_usd (${self.max_usd})"
                if self.max_usd is not None
                else self.limits[0].label
            )
            raise BudgetExceeded(
                f"{what} with model {model!r} has no known price, and {named} is set, so its cost cannot be "
                f"checked before the call; add {model!r} under cost.prices in the config (dollars per million "
                "tokens: input, output), or remove the limit"
            )
        if (
            self.max_usd is not None
            and self.spent_usd + self.held_usd + estimate_usd > self.max_usd + EPSILON_USD
        ):
            raise BudgetExceeded(
                f"{what} with {model} could cost up to ${estimate_usd:.6f}; with ${self.spent_usd:.6f} already "
                f"spent on this query that is over cost.budgets.per_query_usd ${self.max_usd}; lower "
                "--budget-tokens or prompt.max_output_tokens, or raise the limit"
            )
        hold = Hold(uuid.uuid4().hex, estimate_usd)
        if self.store is not None and self.limits:
            self.store.reserve(hold.id, self.limits, estimate_usd)
        self.held_usd += estimate_usd
        return hold

    def settle(self, hold: Hold | None, actual_usd: float | None) -> None:
        """Replace a hold with the call's real cost (an unknown real cost keeps the estimate)."""
        usd = hold.usd if actual_usd is None and hold is not None else (actual_usd or 0.0)
        if hold is not None:
            self.held_usd -= hold.usd
            if self.store is not None and self.limits:
                self.store.settle(hold.id, usd)
        self.spent_usd += usd

    def release(self, hold: Hold | None) -> None:
        """Give back a hold whose call did not happen or was not billed."""
        if hold is None:
            return
        self.held_usd -= hold.usd
        if self.store is not None and self.limits:
            self.store.release(hold.id)
