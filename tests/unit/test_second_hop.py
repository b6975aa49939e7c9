"""`retrieval.second_hop`: a second search for the names the first hits' best sentences hold (plumbing, fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.config import parse_config
from ragcli.errors import ConfigError
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages

DOCS = {
    "album.txt": "Zeta Nights is the second album by Velvet Harbour, released on a small label.",
    "band.txt": "Velvet Harbour was founded by Mara Quill in Leeds. The group toured widely.",
    "noise1.txt": "Gardening needs water, light and patience through the seasons.",
    "noise2.txt": "Trains run every hour between the two towns on weekdays.",
}


def _stages(tmp_path: Path, second_hop: int) -> Stages:
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text + "\n", encoding="utf-8")
    cfg = parse_config(
        {
            "collection": "hop",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 256},
            "ingest": {"sparse": True},
            "retrieval": {"mode": "sparse", "top_k": 1, "second_hop": second_hop},
            "llm": {"type": "scripted"},
        }
    )
    s = Stages.from_config(cfg, parser=PlainTextParser())
    assert not ingest(sorted(tmp_path.glob("*.txt")), s).failed
    return s


def test_the_second_search_adds_the_paragraph_the_first_hit_names(tmp_path: Path) -> None:
    q = "Who founded the group that made the album Zeta Nights?"
    for hop, expect in ((0, 1), (2, 2)):
        folder = tmp_path / str(hop)
        folder.mkdir()
        s = _stages(folder, hop)
        try:
            ans = answer(q, s, QueryOptions(no_answer=True))
        finally:
            s.close()
        text = ans.prompt[-1].content
        assert "Zeta Nights" in text and len(ans.citations) == expect
        steps = {t.stage: t for t in ans.trace}
        if hop:
            assert "Mara Quill" in text  # the band's own paragraph, found through its name
            assert (
                steps["second_hop"].detail["added"] == 1 and "velvet" in steps["second_hop"].detail["names"]
            )
            assert (
                sum(t.stage == "embed_query" for t in ans.trace) == 2
            )  # one more query embedding, on the ledger
        else:
            assert "Mara Quill" not in text and "second_hop" not in steps


def test_second_hop_is_bounded_in_the_config() -> None:
    with pytest.raises(ConfigError, match="second_hop"):
        parse_config({"retrieval": {"second_hop": -1}})
