"""Deterministic ids and hashes: the same file and settings always give the same document and chunk ids.

A chunk id is derived from its document id, the document's hash and its ordinal. So the full set of ids a
complete document must have can be computed from what the store holds (`doc_hash`, `doc_chunks`) without
parsing the file again, and a half-written document (a crash mid-write) never looks complete.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

_NAMESPACE = uuid.UUID("6f1c1d2e-6a38-5b0e-9a55-2f1a7c9e1b11")


def document_id(source: str | Path) -> str:
    """The id of the document at this (absolute) path."""
    return str(uuid.uuid5(_NAMESPACE, f"doc:{source}"))


def chunk_id(doc_id: str, doc_hash: str, ordinal: int) -> str:
    """The id of chunk number `ordinal` of one version (`doc_hash`) of a document."""
    return str(uuid.uuid5(_NAMESPACE, f"chunk:{doc_id}:{doc_hash}:{ordinal}"))


def expected_chunk_ids(doc_id: str, doc_hash: str, count: int) -> set[str]:
    """Every chunk id that a complete copy of this document version has."""
    return {chunk_id(doc_id, doc_hash, i) for i in range(count)}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
