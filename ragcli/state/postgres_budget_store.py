"""Shared dollar limits on PostgreSQL: the `BudgetStore` of `ragcli.cost.protocols`, exact across processes.

Race-free by construction: `reserve` locks the running total of every limit it draws on (`SELECT ... FOR UPDATE`,
in a fixed order so two reservations never deadlock), checks them, and inserts its holds in the same transaction.
Totals are kept in `budget_totals` beside the holds (NUMERIC, so sums of cents stay exact), and every change to a
hold changes its total in the same transaction: a process killed at any point leaves both consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ragcli.cost.protocols import Limit
from ragcli.errors import BudgetExceeded
from ragcli.state.postgres_database import PostgresDatabase

EPSILON_USD = Decimal("1e-12")


def _usd(value: float) -> Decimal:
    return Decimal(repr(float(value)))


class PostgresBudgetStore:
    """Holds and totals against shared limits in PostgreSQL. Safe across threads, processes and hosts."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def reserve(self, hold_id: str, limits: Sequence[Limit], usd: float) -> None:
        """Hold `usd` against every limit at once, or raise `BudgetExceeded` and hold nothing."""
        if not limits:
            return
        amount = _usd(usd)
        ordered = sorted(limits, key=lambda lim: lim.scope)
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO budget_totals (scope, usd) VALUES (%s, 0) ON CONFLICT (scope) DO NOTHING",
                [(lim.scope,) for lim in ordered],
            )
            for lim in ordered:
                cur.execute("SELECT usd FROM budget_totals WHERE scope = %s FOR UPDATE", (lim.scope,))
                spent = cur.fetchone()[0]
                if spent + amount > _usd(lim.usd) + EPSILON_USD:
                    raise BudgetExceeded(
                        f"this call could cost up to ${usd:.6f}, and ${float(spent):.6f} of {lim.label} is "
                        "already spent or held; wait for the limit to reset, or raise it in the config"
                    )
            cur.executemany(
                "INSERT INTO budget_holds (hold_id, scope, usd) VALUES (%s, %s, %s)",
                [(hold_id, lim.scope, amount) for lim in ordered],
            )
            cur.executemany(
                "UPDATE budget_totals SET usd = usd + %s WHERE scope = %s",
                [(amount, lim.scope) for lim in ordered],
            )

    def settle(self, hold_id: str, usd: float) -> None:
        """Replace a hold with what the call really cost (its totals move by the difference)."""
        amount = _usd(usd)
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT scope, usd FROM budget_holds WHERE hold_id = %s ORDER BY scope FOR UPDATE", (hold_id,)
            )
            for scope, held in cur.fetchall():
                cur.execute(
                    "UPDATE budget_totals SET usd = usd + %s WHERE scope = %s", (amount - held, scope)
                )
            cur.execute("UPDATE budget_holds SET usd = %s WHERE hold_id = %s", (amount, hold_id))

    def release(self, hold_id: str) -> None:
        """Drop a hold whose call did not happen (its totals go back down)."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM budget_holds WHERE hold_id = %s RETURNING scope, usd", (hold_id,))
            for scope, held in sorted(cur.fetchall()):
                cur.execute("UPDATE budget_totals SET usd = usd - %s WHERE scope = %s", (held, scope))

    def spent(self, scope: str) -> float:
        """Dollars held or spent against a scope."""
        with self.db.transaction() as cur:
            cur.execute("SELECT usd FROM budget_totals WHERE scope = %s", (scope,))
            row = cur.fetchone()
        return float(row[0]) if row else 0.0

    def close(self) -> None:
        """The database is shared with the other state stores; whoever opened it closes it."""
