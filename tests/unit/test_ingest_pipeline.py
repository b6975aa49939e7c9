"""The ingest pipeline with fakes: incremental re-ingest, replace, prune, bad files, metadata, crash safety.

`SqliteFakeStore` keeps points in a SQLite file (each call commits), so a process killed mid-run leaves exactly
what a durable store would; the crash tests run the pipeline in a subprocess and kill it at several points.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.config import HashEmbedderConfig, PipelineConfig
from ragcli.errors import InputError
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import IngestProgress, ingest, parse_meta
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.protocols import SearchRequest, StoredDocument
from ragcli.types import Chunk, Hit, SparseVector, Vectors

REPO = Path(__file__).resolve().parents[2]


class SqliteFakeStore:
    """A durable fake VectorStore: one SQLite row per point, payload as JSON, brute-force search."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS points (id TEXT PRIMARY KEY, doc_id TEXT, payload TEXT, vector BLOB)"
        )
        self._db.commit()
        self.indexed: dict[str, str] = {}

    def ensure_collection(self, dim: int, *, sparse: bool, indexed_fields: dict[str, str]) -> None:
        self.indexed = dict(indexed_fields)

    def upsert(
        self, chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None = None
    ) -> None:
        rows = []
        for c, v in zip(chunks, dense, strict=True):
            payload = {
                "doc_id": c.doc_id,
                "text": c.text,
                "source": c.source,
                "section_path": list(c.section_path),
                "page": c.page,
                "ordinal": c.ordinal,
                "tokens": c.tokens,
                "content_hash": c.content_hash,
                **c.metadata,
            }
            rows.append((c.id, c.doc_id, json.dumps(payload), np.asarray(v, dtype=np.float32).tobytes()))
        self._db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?)", rows)
        self._db.commit()

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        n = 0
        for d in doc_ids:
            n += self._db.execute("DELETE FROM points WHERE doc_id = ?", (d,)).rowcount
        self._db.commit()
        return n

    def optimize(self) -> None:
        self.optimized = getattr(self, "optimized", 0) + 1

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        n = sum(self._db.execute("DELETE FROM points WHERE id = ?", (c,)).rowcount for c in chunk_ids)
        self._db.commit()
        return n

    def payloads(self) -> dict[str, dict[str, Any]]:
        return {pid: json.loads(p) for pid, p in self._db.execute("SELECT id, payload FROM points")}

    def documents(self) -> dict[str, StoredDocument]:
        docs: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for pid, p in self.payloads().items():
            docs.setdefault(p["doc_id"], []).append((pid, p))
        return {
            d: StoredDocument(
                d,
                rows[0][1]["source"],
                rows[0][1]["doc_hash"],
                rows[0][1]["doc_chunks"],
                tuple(pid for pid, _ in rows),
            )
            for d, rows in docs.items()
        }

    def search(self, request: SearchRequest) -> list[Hit]:  # pragma: no cover - not used here
        return []

    def count(self, filter: object = None) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class ListLedger:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def record(self, row: Any) -> None:
        self.rows.append(row)

    def close(self) -> None:
        pass


def make_stages(store_path: Path, **cfg: Any) -> Stages:
    config = PipelineConfig(embedder=HashEmbedderConfig(dim=32), **cfg)
    return Stages.from_config(
        config,
        parser=PlainTextParser(),
        embedder=HashEmbedder(32),
        store=SqliteFakeStore(store_path),
        ledger=ListLedger(),
    )


def write_corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text(
        "---\ntitle: Alpha guide\nteam: search\ntags: [x, y]\n---\n# Alpha\n\n"
        + "Alpha text is here. " * 30
        + "\n\n## Details\n\n"
        + "More detail. " * 40
    )
    (docs / "b.txt").write_text("Bravo\n\n" + "Bravo prose sentence. " * 50)
    (docs / "sub" / "c.md").write_text("# Charlie\n\nCharlie content.\n")
    (docs / "sub" / "c.md.meta.json").write_text(json.dumps({"owner": "ops", "year": 2024}))
    (docs / ".hidden.md").write_text("# Hidden\n\nnot ingested")
    (docs / "image.png").write_bytes(b"\x89PNG....")
    return docs


def state(store: SqliteFakeStore) -> set[tuple[str, str, str]]:
    return {(pid, p["text"], p["doc_hash"]) for pid, p in store.payloads().items()}


def test_ingest_then_unchanged_embeds_nothing(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    stages = make_stages(tmp_path / "s.db")
    events: list[IngestProgress] = []
    rep = ingest([docs], stages, progress=events.append)
    assert [f.status for f in rep.files] == ["ok", "ok", "ok"]
    assert rep.chunks_added == stages.store.count() > 3
    assert rep.tokens_embedded > 0 and rep.largest_chunk_tokens <= 256
    per_file = [e for e in events if e.chunks_done == 0]  # the others: one per batch of chunks written
    assert len(per_file) == 3 and events[-1].files_done == 3
    assert events[-1].chunks_embedded == rep.chunks_added
    assert len(stages.ledger.rows) == 1 and stages.ledger.rows[0].stage == "embed"  # type: ignore[attr-defined]
    assert set(stages.store.indexed) >= {"doc_id", "source", "content_type"}  # type: ignore[attr-defined]

    again = make_stages(tmp_path / "s.db")
    rep2 = ingest([docs], again)
    assert [f.status for f in rep2.files] == ["unchanged"] * 3
    assert rep2.tokens_embedded == 0 and again.embedder.calls == 0  # type: ignore[attr-defined]
    assert rep2.chunks_added == rep2.chunks_replaced == 0


def test_a_large_ingest_ends_by_optimising_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = write_corpus(tmp_path)
    small = make_stages(tmp_path / "small.db")
    ingest([docs], small)
    assert getattr(small.store, "optimized", 0) == 0  # a few chunks: not worth it
    monkeypatch.setattr("ragcli.pipelines.ingest_pipeline.OPTIMIZE_AFTER_CHUNKS", 3)
    large = make_stages(tmp_path / "large.db")
    ingest([docs], large)
    assert getattr(large.store, "optimized", 0) == 1


def test_what_a_folder_walk_leaves_out_is_in_the_report(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)  # holds image.png, a type ragcli does not read
    (docs / "loop").symlink_to(docs / "loop")
    rep = ingest([docs], make_stages(tmp_path / "s.db"))
    reasons = {Path(f.path).name: f.reason for f in rep.skipped}
    assert "unsupported file type .png" in reasons["image.png"] and "symlink loop" in reasons["loop"]
    assert {f.status for f in rep.skipped} == {"skipped"} and len(rep.files) == 3


def test_payload_carries_file_facts_and_user_metadata(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    stages = make_stages(tmp_path / "s.db", ingest={"metadata": {"corpus": "demo", "team": "cfg"}})
    ingest([docs], stages, meta=parse_meta(["lang=en", "year=2023"]))
    payloads = list(stages.store.payloads().values())  # type: ignore[attr-defined]
    a = next(p for p in payloads if p["source"].endswith("a.md"))
    assert (
        a["title"] == "Alpha guide" and a["team"] == "search" and a["tags"] == ["x", "y"]
    )  # front matter wins
    assert a["corpus"] == "demo" and a["lang"] == "en" and a["year"] == 2023
    assert a["content_type"] == "markdown" and isinstance(a["modified"], int)
    assert a["doc_chunks"] >= 1 and len(a["doc_hash"]) == 32
    c = next(p for p in payloads if p["source"].endswith("c.md"))
    assert c["owner"] == "ops" and c["year"] == 2024  # sidecar beats --meta
    assert c["section_path"] == ["Charlie"]


def test_changed_file_is_replaced_not_duplicated(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    ingest([docs], make_stages(tmp_path / "s.db"))
    (docs / "b.txt").write_text("Bravo\n\n" + "A different sentence. " * 10)
    stages = make_stages(tmp_path / "s.db")
    rep = ingest([docs], stages)
    assert [f.status for f in rep.files] == ["unchanged", "ok", "unchanged"]
    assert rep.chunks_replaced >= 1 and rep.chunks_added == 0
    clean = make_stages(tmp_path / "clean.db")
    ingest([docs], clean)
    assert {(t, h) for _, t, h in state(stages.store)} == {  # type: ignore[arg-type]
        (t, h) for _, t, h in state(clean.store)
    }  # type: ignore[arg-type]


def test_prune_removes_documents_that_are_gone(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    ingest([docs], make_stages(tmp_path / "s.db"))
    (docs / "b.txt").unlink()
    kept = make_stages(tmp_path / "s.db")
    ingest([docs], kept)
    assert any(p["source"].endswith("b.txt") for p in kept.store.payloads().values())  # type: ignore[attr-defined]
    pruned = make_stages(tmp_path / "s.db")
    rep = ingest([docs], pruned, prune=True)
    assert rep.chunks_removed >= 1
    assert not any(p["source"].endswith("b.txt") for p in pruned.store.payloads().values())  # type: ignore[attr-defined]


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "good.txt").write_text("A good file with real text in it.")
    (d / "empty.txt").write_text("")
    (d / "blank.md").write_text("   \n\n  ")
    (d / "binary.txt").write_bytes(b"%PDF-1.4\x00\x01\x02binary")
    (d / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e, d\xe9j\xe0 vu.".encode("latin-1"))
    (d / "broken.json").write_text("{not json")
    (d / "noise.csv").write_bytes(bytes(range(1, 32)) * 50 + bytes(range(128, 256)) * 40)
    odd = tmp_path / "notes.xyz"
    odd.write_text("what is this")
    stages = make_stages(tmp_path / "s.db")
    rep = ingest([d, odd], stages)
    by = {Path(f.path).name: f for f in rep.files}
    assert by["good.txt"].status == "ok"
    assert by["latin1.txt"].status == "ok"
    assert by["empty.txt"].status == "empty" and "empty" in by["empty.txt"].reason
    assert by["blank.md"].status == "empty"
    assert by["binary.txt"].status == "failed" and "binary" in by["binary.txt"].reason
    assert by["broken.json"].status == "failed" and "JSON" in by["broken.json"].reason
    assert by["noise.csv"].status == "failed" and "UTF-8" in by["noise.csv"].reason
    assert by["notes.xyz"].status == "failed" and "unsupported file type .xyz" in by["notes.xyz"].reason
    assert all(f.reason for f in rep.failed)


def test_missing_path_and_reserved_meta_fail_before_any_work(tmp_path: Path) -> None:
    stages = make_stages(tmp_path / "s.db")
    with pytest.raises(InputError, match=r"path not found: .*nope.*pass an existing file or folder"):
        ingest([tmp_path / "nope"], stages)
    (tmp_path / "f.txt").write_text("text")
    with pytest.raises(InputError, match="set by ragcli itself"):
        ingest([tmp_path / "f.txt"], stages, meta={"source": "x"})
    with pytest.raises(InputError, match="not key=value"):
        parse_meta(["novalue"])


def test_file_that_became_empty_loses_its_chunks(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("Some text to index here.")
    ingest([f], make_stages(tmp_path / "s.db"))
    f.write_text("")
    stages = make_stages(tmp_path / "s.db")
    rep = ingest([f], stages)
    assert rep.files[0].status == "empty" and stages.store.count() == 0 and rep.chunks_removed == 1


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests.unit.test_ingest_pipeline import make_stages
    from ragcli.pipelines.ingest_pipeline import ingest
    stages = make_stages(Path(sys.argv[1]))
    ingest([Path(sys.argv[2])], stages)
    stages.store.close()
""")


def _run_child(db: Path, docs: Path, crash_at: str | None) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAGCLI_TEST_CRASH_AT", None)
    if crash_at:
        env["RAGCLI_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), str(docs)],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=120,
    ).returncode


@pytest.mark.parametrize("crash_at", ["embed:1", "upsert:1", "upsert:2", "delete:1"])
def test_crash_at_any_point_then_rerun_equals_clean_run(tmp_path: Path, crash_at: str) -> None:
    docs = write_corpus(tmp_path)
    db = tmp_path / "crash.db"
    assert _run_child(db, docs, None) == 0  # a first full ingest
    # change two files and add one, so the next run replaces, deletes stale chunks and adds
    (docs / "a.md").write_text("# Alpha\n\n" + "Rewritten alpha. " * 80)
    (docs / "b.txt").write_text("Bravo\n\nShort now.")
    (docs / "d.txt").write_text("Delta\n\n" + "Delta text. " * 60)
    assert _run_child(db, docs, crash_at) == 77  # killed mid-run
    assert _run_child(db, docs, None) == 0  # rerun
    clean = tmp_path / "clean.db"
    assert _run_child(clean, docs, None) == 0
    assert state(SqliteFakeStore(db)) == state(SqliteFakeStore(clean))


class CountingSparseEncoder:
    """A fake BM25 encoder: one index per distinct word."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> list[SparseVector]:
        self.calls += 1
        return [
            SparseVector(sorted({hash(w) % 1000 for w in t.split()}), [1.0] * len(set(t.split())))
            for t in texts
        ]

    def encode_query(self, text: str) -> SparseVector:
        return self.encode([text])[0]


class SparseRecordingStore(SqliteFakeStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sparse_seen: list[SparseVector] = []
        self.sparse_flag = False

    def ensure_collection(self, dim: int, *, sparse: bool, indexed_fields: dict[str, str]) -> None:
        self.sparse_flag = sparse
        super().ensure_collection(dim, sparse=sparse, indexed_fields=indexed_fields)

    def upsert(
        self, chunks: Sequence[Chunk], dense: Vectors, sparse: Sequence[SparseVector] | None = None
    ) -> None:
        assert sparse is not None and len(sparse) == len(chunks)
        self.sparse_seen.extend(sparse)
        super().upsert(chunks, dense, sparse)


def test_sparse_vectors_are_written_when_configured(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    config = PipelineConfig(embedder=HashEmbedderConfig(dim=32), ingest={"sparse": True})
    store = SparseRecordingStore(tmp_path / "s.db")
    encoder = CountingSparseEncoder()
    stages = Stages.from_config(
        config,
        parser=PlainTextParser(),
        embedder=HashEmbedder(32),
        store=store,
        ledger=ListLedger(),
        sparse_encoder=encoder,
    )
    rep = ingest([docs], stages)
    assert store.sparse_flag and encoder.calls == 1
    assert len(store.sparse_seen) == rep.chunks_added > 0
