"""Ingest with the real pieces: unstructured, the packaged MiniLM and Qdrant's embedded engine, on real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragcli.config import load_config
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.protocols import SearchRequest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_corpus(data_dir: Path, tmp_path: Path) -> Path:
    """A few real files of each kind, plus one password-protected PDF and one empty file."""
    src = data_dir / "docs_corpus"
    dst = tmp_path / "corpus"
    dst.mkdir()
    for rel in (
        "markdown_mkdocs/docs/user-guide/installation.md",
        "html_readability/001/source.html",
        "pdf/021-pdfa/crazyones-pdfa.pdf",
        "pdf/005-libreoffice-writer-password/libreoffice-writer-password.pdf",
        "docx/tbl-cell-props.docx",
    ):
        shutil.copy(src / rel, dst / Path(rel).name)
    (dst / "notes.txt").write_text("Release notes\n\nThe ingest pipeline skips unchanged files.\n")
    (dst / "empty.txt").write_text("")
    return dst


def test_real_ingest_limits_search_and_unchanged_rerun(small_corpus: Path) -> None:
    cfg = load_config("local", overrides={"collection": "it-ingest"})
    stages = Stages.from_config(cfg)
    try:
        rep = ingest([small_corpus], stages)
        status = {Path(f.path).name: f.status for f in rep.files}
        assert status["libreoffice-writer-password.pdf"] == "failed"
        assert "password" in rep.failed[0].reason
        assert status["empty.txt"] == "empty"
        assert sum(1 for s in status.values() if s == "ok") == 5
        # the hard maximum, re-measured with the model's own tokenizer (special tokens included)
        from transformers import AutoTokenizer

        from ragcli.resources import embedding_model_dir

        tok = AutoTokenizer.from_pretrained(str(embedding_model_dir()))
        assert 0 < rep.largest_chunk_tokens <= 256
        hits = stages.store.search(
            SearchRequest(dense=stages.embedder.embed_query("install mkdocs with pip").vectors[0], limit=3)
        )
        assert hits and hits[0].chunk.source.endswith("installation.md")
        for h in hits:
            text = f"{h.chunk.breadcrumb}\n\n{h.chunk.text}"
            assert len(tok(text)["input_ids"]) <= 256
    finally:
        stages.close()
    again = Stages.from_config(cfg)
    try:
        rep2 = ingest([small_corpus], again)
        assert rep2.tokens_embedded == 0
        assert {f.status for f in rep2.files} == {"unchanged", "failed", "empty"}
    finally:
        again.close()


_CHILD = textwrap.dedent("""
    import sys
    from ragcli.config import load_config
    from ragcli.pipelines.ingest_pipeline import ingest
    from ragcli.pipelines.stages import Stages
    cfg = load_config(sys.argv[1], overrides={"collection": sys.argv[3]})
    stages = Stages.from_config(cfg)
    ingest([sys.argv[2]], stages)
    stages.close()
""")


def _run(cfg: Path, docs: Path, collection: str, crash_at: str | None, home: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGCLI_HOME": str(home)}
    env.pop("RAGCLI_TEST_CRASH_AT", None)
    if crash_at:
        env["RAGCLI_TEST_CRASH_AT"] = crash_at
    args = [sys.executable, "-c", _CHILD, str(cfg), str(docs), collection]
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, timeout=300).returncode


def _state(home: Path, cfg_path: Path, collection: str) -> set[tuple[str, str]]:
    from ragcli.retrieval.build import build_store

    cfg = load_config(cfg_path, overrides={"collection": collection, "home": str(home)})
    store = build_store(cfg)
    try:
        docs = store.documents()
        return {(cid, d.content_hash) for d in docs.values() for cid in d.chunk_ids}
    finally:
        store.close()


@pytest.mark.parametrize("crash_at", ["upsert:2"])  # every kill point is covered by the unit tests
def test_kill_mid_ingest_then_rerun_equals_clean_run_on_edge_store(tmp_path: Path, crash_at: str) -> None:
    """The real embedded Qdrant engine (the hash embedder keeps the subprocesses fast: the store is under test)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"f{i}.md").write_text(f"# Doc {i}\n\n" + f"Sentence {i} about topic {i}. " * 60)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("embedder: {type: hash, dim: 32}\nllm: {type: scripted}\n")
    home = tmp_path / "home"
    assert _run(cfg, docs, "c", None, home) == 0
    (docs / "f1.md").write_text("# Doc 1\n\nNow short.")
    (docs / "f2.md").write_text("# Doc 2\n\n" + "Rewritten text. " * 90)
    (docs / "f9.md").write_text("# Doc 9\n\n" + "A new file. " * 40)
    assert _run(cfg, docs, "c", crash_at, home) == 77
    assert _run(cfg, docs, "c", None, home) == 0
    assert _run(cfg, docs, "clean", None, home) == 0
    assert _state(home, cfg, "c") == _state(home, cfg, "clean")
