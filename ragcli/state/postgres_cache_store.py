"""The answer cache's entry metadata on PostgreSQL: every host that shares the state shares the cache's entries.

The metadata store decides what exists (the vector index is a hint), so with `state.dsn_env` an exact repeat is
served on any host, an entry judged bad or citing a re-ingested chunk is dropped for all of them, and `ragcli
cache stats` counts every host's lookups. Semantic matches are shared too when the cache's collection is on a
Qdrant server; over the embedded engine each host only finds the entries it wrote itself. Same SQL as the
SQLite store (`SqlCacheStore`), on the `cache_entries`, `cache_cited` and `cache_counters` tables (migration 6).
"""

from __future__ import annotations

from ragcli.generation.sqlite_cache_store import SqlCacheStore
from ragcli.state.postgres_database import PostgresTables


class PostgresCacheStore(PostgresTables, SqlCacheStore):
    """Cache metadata in a PostgreSQL database (`PostgresTables`: its constructor, connection and `close`)."""

    tables = "cache_"
    _tx = PostgresTables._qmark
