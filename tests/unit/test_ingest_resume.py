"""Big files: chunks are written in bounded batches, progress moves by chunks, an interrupted run is resumed.

The interrupted run is a real process killed (os._exit through the pipeline's test hook) after its second
batch was written; the rerun must embed only the chunks that are missing and end in a clean run's state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.pipelines.ingest_pipeline import IngestProgress, ingest
from tests.unit.test_ingest_pipeline import REPO, SqliteFakeStore, make_stages, state

BATCH = 8


def big_file(root: Path) -> Path:
    f = root / "book.txt"
    paras = [f"Chapter {i}\n\n" + f"Sentence number {i} of a long book goes here. " * 40 for i in range(20)]
    f.write_text("\n\n".join(paras))
    return f


def test_progress_moves_by_chunks_in_bounded_batches(tmp_path: Path) -> None:
    f = big_file(tmp_path)
    stages = make_stages(tmp_path / "s.db")
    events: list[IngestProgress] = []
    rep = ingest([f], stages, progress=events.append, batch_chunks=BATCH)
    total = rep.files[0].chunks
    assert total > 3 * BATCH
    chunk_events = [e for e in events if e.chunks_done]
    assert len(chunk_events) >= total // BATCH  # one per batch written
    assert [e.chunks_done for e in chunk_events] == sorted(e.chunks_done for e in chunk_events)
    assert chunk_events[-1].chunks_done == chunk_events[-1].chunks_total == total
    assert stages.embedder.calls >= total // BATCH  # type: ignore[attr-defined]  # never one call for all
    assert stages.store.count() == total == rep.chunks_added


def test_batch_chunks_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="batch_chunks"):
        ingest([big_file(tmp_path)], make_stages(tmp_path / "s.db"), batch_chunks=0)


_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests.unit.test_ingest_pipeline import make_stages
    from ragcli.pipelines.ingest_pipeline import ingest
    stages = make_stages(Path(sys.argv[1]))
    rep = ingest([Path(sys.argv[2])], stages, batch_chunks=int(sys.argv[3]))
    print("resumed", rep.chunks_resumed, "embedded", stages.embedder.texts_embedded)
    stages.store.close()
""")


def _child(db: Path, f: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAGCLI_TEST_CRASH_AT", None)
    if crash_at:
        env["RAGCLI_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), str(f), str(BATCH)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("changed", [False, True])
def test_interrupted_big_file_is_resumed_not_redone(tmp_path: Path, changed: bool) -> None:
    f = big_file(tmp_path)
    db = tmp_path / "s.db"
    if changed:  # an older version is stored: its chunks must go only once the new one is complete
        f.write_text("Old\n\n" + "An older version of the book. " * 200)
        assert _child(db, f, None).returncode == 0
        f = big_file(tmp_path)
    killed = _child(db, f, "upsert:2")
    assert killed.returncode == 77, killed.stderr
    written = SqliteFakeStore(db).count()
    assert written >= 2 * BATCH  # the two batches written before the kill are kept
    again = _child(db, f, None)
    assert again.returncode == 0, again.stderr
    words = again.stdout.split()
    resumed, embedded = int(words[1]), int(words[3])
    assert resumed == 2 * BATCH  # found by id, not embedded again
    total = SqliteFakeStore(db).count()
    assert embedded <= total - resumed  # only the missing chunks (identical texts are embedded once)
    clean = tmp_path / "clean.db"
    assert _child(clean, f, None).returncode == 0
    assert state(SqliteFakeStore(db)) == state(SqliteFakeStore(clean))
