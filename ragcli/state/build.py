"""Open the shared state of a config: ledger, budget store, API keys and route log, on SQLite or PostgreSQL.

`state.dsn_env` names an environment variable holding a PostgreSQL DSN: when it is set, all of them live in that
database (several processes and hosts share them exactly). Otherwise the ledger, budgets and route log are in the
ledger's SQLite file (`cost.ledger`) and the keys in `state.keys` (default `<home>/keys.sqlite`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig
    from ragcli.cost.protocols import BudgetStore
    from ragcli.generation.route_log import RouteLog
    from ragcli.serve.key_store import KeyStore
    from ragcli.state.postgres_database import PostgresDatabase


@dataclass
class State:
    """The three stores and where they are (a path or a redacted DSN: safe to print)."""

    ledger: Any
    """A `Ledger` (SQLite) or a `PostgresLedger`: the same methods."""
    budgets: BudgetStore
    keys: KeyStore
    where: str
    db: PostgresDatabase | None = None

    def close(self) -> None:
        for store in (self.keys, self.budgets, self.ledger):
            store.close()
        if self.db is not None:
            self.db.close()


def state_dsn_env(cfg: PipelineConfig) -> str | None:
    section = getattr(cfg, "state", None)
    return getattr(section, "dsn_env", None) if section is not None else None


def open_state(cfg: PipelineConfig, *, max_connections: int = 8) -> State:
    """The state stores of a config, opened (a PostgreSQL database is migrated to the current schema)."""
    dsn_env = state_dsn_env(cfg)
    if dsn_env:
        from ragcli.state.postgres_budget_store import PostgresBudgetStore
        from ragcli.state.postgres_database import PostgresDatabase, dsn_from_env
        from ragcli.state.postgres_key_store import PostgresKeyStore
        from ragcli.state.postgres_ledger import PostgresLedger

        db = PostgresDatabase(dsn_from_env(dsn_env), max_connections=max_connections)
        return State(PostgresLedger(db), PostgresBudgetStore(db), PostgresKeyStore(db), db._where, db)
    from ragcli.cost.budget import SqliteBudgetStore
    from ragcli.cost.ledger import Ledger, ledger_path
    from ragcli.state.sqlite_key_store import SqliteKeyStore

    path = ledger_path(cfg)
    section = getattr(cfg, "state", None)
    keys_file = getattr(section, "keys", None) if section is not None else None
    keys = Path(keys_file).expanduser() if keys_file else cfg.home_dir() / "keys.sqlite"
    return State(Ledger(path), SqliteBudgetStore(path), SqliteKeyStore(keys), f"{path} (keys: {keys})")


def open_route_log(cfg: PipelineConfig) -> RouteLog:
    """The route log (tiers, sources, cache links, feedback) of a config, for a command that needs only it: in the
    PostgreSQL state when `state.dsn_env` is set (closing it closes that connection), else in the ledger's file."""
    dsn_env = state_dsn_env(cfg)
    if dsn_env:
        from ragcli.state.postgres_database import PostgresDatabase, dsn_from_env
        from ragcli.state.postgres_route_log import PostgresRouteLog

        return PostgresRouteLog(PostgresDatabase(dsn_from_env(dsn_env), max_connections=2), owned=True)
    from ragcli.cost.ledger import ledger_path
    from ragcli.generation.route_log import RouteLog

    return RouteLog(ledger_path(cfg))
