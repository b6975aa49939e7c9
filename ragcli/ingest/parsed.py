"""Turn parsed elements and a file's facts into a `Document` (shared by every parser)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ragcli.ingest.file_checks import read_sidecar
from ragcli.ingest.ids import document_id
from ragcli.types import Document, Element, Metadata


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _title(path: Path, elements: list[Element], meta: Metadata, title_hint: str | None) -> str:
    for cand in (meta.get("title"), title_hint):
        if isinstance(cand, str) and cand.strip() and len(cand) <= 200:
            return " ".join(cand.split())
    for el in elements[:8]:
        if el.kind == "title" and el.heading_level == 1 and 0 < len(el.text) <= 120:
            return " ".join(el.text.split())
    return path.stem


def build_document(
    path: Path, elements: list[Element], content_type: str, meta: Metadata, *, title_hint: str | None = None
) -> Document:
    """A document with its id, title, file facts and own metadata (front matter, then sidecar on top)."""
    path = path.resolve()
    side, _ = read_sidecar(path)
    merged: Metadata = {**meta, **side}
    title = _title(path, elements, merged, title_hint)
    merged.update(
        {
            "title": title,
            "content_type": content_type,
            "file_type": path.suffix.lower().lstrip("."),
            "modified": int(path.stat().st_mtime),
        }
    )
    return Document(
        id=document_id(path),
        source=str(path),
        title=title,
        elements=elements,
        content_type=content_type,
        metadata=merged,
        content_hash=file_hash(path),
    )
