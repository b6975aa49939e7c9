"""Shared state: the ledger, budgets and API keys on SQLite (embedded default) or PostgreSQL (several processes)."""
