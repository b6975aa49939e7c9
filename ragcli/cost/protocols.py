"""The roles of the cost layer. Start here.

A `BudgetStore` keeps the dollars reserved and spent against shared limits (per day, per tenant and day), so that
several threads or processes drawing on one limit never spend past it together. SQLite (the ledger's file) is
the embedded default; a PostgreSQL store implements the same protocol for several hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    """A shared dollar limit: `scope` names what it counts (e.g. `day:2026-12-02`, `tenant:acme:day:...`)."""

    scope: str
    usd: float
    label: str
    """How the limit is named to a user, e.g. `cost.budgets.per_day_usd ($5.00)`."""


class BudgetStore(Protocol):
    """Atomic reservations against shared limits."""

    def reserve(self, hold_id: str, limits: Sequence[Limit], usd: float) -> None:
        """Hold `usd` against every limit at once, or none of them.

        Raises:
            BudgetExceeded: one of the limits would go over; the message names it.
        """
        ...

    def settle(self, hold_id: str, usd: float) -> None:
        """Replace a hold with what the call really cost."""
        ...

    def release(self, hold_id: str) -> None:
        """Drop a hold whose call did not happen or failed unbilled."""
        ...

    def spent(self, scope: str) -> float:
        """Dollars held or spent against a scope."""
        ...

    def close(self) -> None: ...
