"""How well a candidate's best sentence matches the question: the sentence features of a trained fusion.

A chunk's vector averages all of its sentences, so a chunk that holds the one sentence a question is about (a
claim's evidence, a fact's statement) can rank below one that is vaguely about the topic throughout. The fusion
can also read, for each of its candidates, the cosine between the question and the chunk's best-matching
sentence, and the cosine with its first line (a title or heading). On SciFact's train queries (5-fold CV) these
two lift the trained fusion from +0.029 to +0.046 nDCG@10 over RRF
(`benchmarks/retrieval_fusion_sentences_cv.py`).

The sentences are embedded with the collection's own (local) embedder, once per chunk text and model, and kept
in memory and in a SQLite file under the home: at ingest under a config whose fusion reads them, by `ragcli train
fusion --sentences` for its queries' candidates, and otherwise when a chunk is first a candidate.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragcli.ingest.structure_chunker import split_sentences

MAX_SEGMENTS = 48
"""Sentences read per chunk at most (a 256-token chunk holds ~10; a table or list can split into hundreds)."""
MAX_CHARS = 400
"""A sentence is embedded from its first 400 characters (~100 tokens): the model reads short text best."""


def segments(text: str) -> list[str]:
    """The chunk's lines, each split into sentences: a title or heading line is a segment of its own."""
    out: list[str] = []
    for line in text.splitlines():
        for s in split_sentences(line):
            if len(s) > 2:
                out.append(s[:MAX_CHARS])
                if len(out) == MAX_SEGMENTS:
                    return out
    return out or [text.strip()[:MAX_CHARS] or " "]


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class SentenceVectors:
    """The sentence vectors of chunk texts, embedded once with `embedder` and kept by the text's hash.

    Args:
        embedder: The collection's embedder (its vectors are the query's).
        path: A SQLite file that keeps the vectors across processes (float16); None keeps them in memory only.
        memory: Chunks kept in memory (least recently used dropped first).
    """

    def __init__(self, embedder: Any, path: Path | None = None, *, memory: int = 4096) -> None:
        self.embedder = embedder
        self.path = path
        self.memory = memory
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.embedded = 0
        """Sentences this object has embedded (the rest came from memory or the file)."""

    def _file(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._db is None:
            from ragcli.state.sqlite_file import open_wal

            def schema(db: sqlite3.Connection) -> None:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS sentence_vectors (key TEXT NOT NULL, model TEXT NOT NULL, "
                    "rows INTEGER NOT NULL, vectors BLOB NOT NULL, PRIMARY KEY (key, model))"
                )

            self._db = open_wal(
                self.path,
                what="the sentence-vector cache",
                fix="delete the file: it is rebuilt as chunks are asked about",
                schema=schema,
                synchronous_normal=True,
            )
        return self._db

    def matrices(self, texts: Sequence[str]) -> list[Any]:
        """One (sentences, dim) float32 matrix of unit vectors per text, embedding only what is not kept yet."""
        import numpy as np

        keys = [_key(t) for t in texts]
        found: dict[str, Any] = {}
        model = self.embedder.model_name
        with self._lock:
            for k in keys:
                if k in self._mem:
                    self._mem.move_to_end(k)
                    found[k] = self._mem[k]
            db = self._file()
            missing = sorted({k for k in keys if k not in found})
            if db is not None and missing:
                for start in range(0, len(missing), 500):
                    part = missing[start : start + 500]
                    marks = ",".join("?" * len(part))
                    for k, rows, blob in db.execute(
                        f"SELECT key, rows, vectors FROM sentence_vectors WHERE model = ? AND key IN ({marks})",
                        [model, *part],
                    ):
                        found[k] = np.frombuffer(blob, dtype=np.float16).reshape(rows, -1).astype(np.float32)
        todo: dict[str, list[str]] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in found and k not in todo:
                todo[k] = segments(t)
        if todo:
            flat = [s for segs in todo.values() for s in segs]
            vecs = np.asarray(self.embedder.embed(flat).vectors, dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
            self.embedded += len(flat)
            at = 0
            fresh = []
            for k, segs in todo.items():
                found[k] = vecs[at : at + len(segs)]
                at += len(segs)
                fresh.append((k, model, len(segs), found[k].astype(np.float16).tobytes()))
            with self._lock:
                db = self._file()
                if db is not None:
                    db.executemany("INSERT OR REPLACE INTO sentence_vectors VALUES (?, ?, ?, ?)", fresh)
        with self._lock:
            for k in keys:
                self._mem[k] = found[k]
                self._mem.move_to_end(k)
            while len(self._mem) > self.memory:
                self._mem.popitem(last=False)
        return [found[k] for k in keys]

    def scores(self, query_vector: Any, texts: Sequence[str]) -> Any:
        """(len(texts), 2): the cosine of the query with each text's best sentence, and with its first line."""
        import numpy as np

        q = np.asarray(query_vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) + 1e-12)
        rows = []
        for m in self.matrices(texts):
            sims = m @ q
            rows.append((float(sims.max()), float(sims[0])))
        return np.asarray(rows, dtype=np.float64).reshape(len(texts), 2)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


__all__ = ["MAX_SEGMENTS", "SentenceVectors", "segments"]
