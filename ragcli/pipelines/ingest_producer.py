"""The parse side of ingest: hash, parse and chunk files on a background thread, a bounded queue ahead.

Parsing (unstructured, lxml, regex) and embedding (torch, which releases the GIL in its kernels) overlap:
one core parses the next files while the other embeds. The queue holds a few parsed files at most, so a
folder of huge files never sits in memory at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ragcli.errors import ConfigError, RagError, ResourceMissing
from ragcli.ingest.file_checks import EmptyDocumentError
from ragcli.ingest.ids import document_id
from ragcli.retrieval.protocols import StoredDocument
from ragcli.types import Chunk, Document

log = logging.getLogger(__name__)

QUEUE_FILES = 4
"""Parsed files waiting for the embedder at most: bounds memory, and keeps the embedder fed."""

Status = Literal["ok", "unchanged", "empty", "failed"]


@dataclass
class Prepared:
    """One file after hashing, parsing and chunking (or the reason it went no further)."""

    n: int
    path: Path
    doc_id: str
    previous: StoredDocument | None
    status: Status
    reason: str = ""
    doc: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    fatal: BaseException | None = None
    """An error that must stop the whole run (a missing model, a bad config): re-raised by the consumer."""


PrepareFn = Callable[[Path, StoredDocument | None], tuple[Document | None, list[Chunk], dict[str, float]]]
"""Hashes, parses and chunks one file: (document, chunks, seconds per stage); document None = unchanged."""


def prepare_one(n: int, path: Path, stored: dict[str, StoredDocument], fn: PrepareFn) -> Prepared:
    """Run `fn` on one file and turn every per-file failure into a status with a reason a person can act on."""
    doc_id = document_id(path)
    prev = stored.get(doc_id)
    item = Prepared(n, path, doc_id, prev, "ok")
    try:
        doc, chunks, item.seconds = fn(path, prev)
        if doc is None:
            item.status = "unchanged"
        else:
            item.doc, item.chunks = doc, chunks
    except EmptyDocumentError as exc:
        item.status, item.reason = "empty", str(exc)
    except (ResourceMissing, ConfigError) as exc:
        item.status, item.fatal = "failed", exc
    except RagError as exc:
        item.status, item.reason = "failed", str(exc)
    except (OSError, UnicodeError) as exc:
        item.status, item.reason = "failed", f"cannot read the file ({type(exc).__name__}: {exc})"
    except Exception as exc:  # a parser bug on one odd file must not stop the batch
        log.warning("unexpected error on %s", path, exc_info=True)
        item.status = "failed"
        item.reason = (
            f"could not be parsed ({type(exc).__name__}: {exc}); report this file if it opens fine elsewhere"
        )
    return item


def prepared_files(
    files: Sequence[Path],
    stored: dict[str, StoredDocument],
    fn: PrepareFn,
    *,
    background: bool = True,
) -> Iterator[Prepared]:
    """Prepared files in input order; with `background`, produced on a thread at most `QUEUE_FILES` ahead.

    Stopping the iteration early (an exception in the consumer, Ctrl-C) stops the producer at its next file.
    """
    if not background or len(files) < 2:
        for n, path in enumerate(files, 1):
            yield prepare_one(n, path, stored, fn)
        return
    q: queue.Queue[Prepared | None] = queue.Queue(maxsize=QUEUE_FILES)
    stop = threading.Event()

    def produce() -> None:
        try:
            for n, path in enumerate(files, 1):
                if stop.is_set():
                    return
                item = prepare_one(n, path, stored, fn)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if item.fatal is not None:
                    return
        finally:
            while not stop.is_set():
                try:
                    q.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue

    worker = threading.Thread(target=produce, name="ragcli-ingest-parse", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            yield item
    finally:
        stop.set()
        deadline = time.monotonic() + 5.0
        while worker.is_alive() and time.monotonic() < deadline:
            try:  # unblock a producer waiting on a full queue
                q.get_nowait()
            except queue.Empty:
                worker.join(0.1)
