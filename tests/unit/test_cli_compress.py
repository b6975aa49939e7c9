"""`ragcli eval compress` and `ragcli eval history` through typer's CliRunner on tiny files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app


def _hotpot(tmp_path: Path, n: int = 8) -> Path:
    rows = []
    for i in range(n):
        rows.append(
            {
                "question_id": f"q{i}",
                "question_text": f"When was Town{i} founded?",
                "answers_objects": [{"spans": [f"{1800 + i}"]}],
                "contexts": [
                    {
                        "title": f"Town{i}",
                        "paragraph_text": f"Town{i} is a town. It was founded in {1800 + i}.",
                        "is_supporting": True,
                    },
                    {
                        "title": "Other",
                        "paragraph_text": "Cats sleep a lot. Dogs bark at night.",
                        "is_supporting": False,
                    },
                ],
            }
        )
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return p


def test_eval_compress_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "compress",
            "--questions",
            str(_hotpot(tmp_path)),
            "--format",
            "hotpotqa",
            "--ratio",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["items"] == 8 and 0 <= data["answer_kept"] <= 1 and data["ratio_reached"] >= 1.5


def test_eval_compress_reads_the_configs_compression_section(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("compression: {type: sentences, prune_words: true, block_pairs: false}\n")
    args = ["eval", "compress", "--questions", str(_hotpot(tmp_path)), "--format", "hotpotqa", "--json"]
    default = json.loads(CliRunner().invoke(app, args).output)
    configured = json.loads(CliRunner().invoke(app, [*args, "-c", str(cfg)]).output)
    assert default["method"] == "sentences" and configured["method"] == "sentences+words"


def test_eval_compress_with_a_unit_model_and_another_embedder(tmp_path: Path) -> None:
    """The unit model's gate falls back to the question's word counts when the config's embedder is not the
    card's (here the hash fake); the run completes."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("embedder: {type: hash}\ncompression: {type: sentences, unit_model: packaged:qa-units}\n")
    args = ["eval", "compress", "--questions", str(_hotpot(tmp_path)), "--format", "hotpotqa", "--json"]
    res = CliRunner().invoke(app, [*args, "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["items"] == 8


def test_eval_compress_counts_the_items_sent_as_one_source_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.generation.unit_model import UnitModel

    monkeypatch.setattr(UnitModel, "multi_hop", lambda self, question, vector=None: 0.0)  # sure: single-hop
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "embedder: {type: hash}\n"
        "compression: {type: sentences, unit_model: packaged:qa-units, whole_source_tokens: 64}\n"
    )
    args = ["eval", "compress", "--questions", str(_hotpot(tmp_path)), "--format", "hotpotqa", "-c", str(cfg)]
    data = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert data["whole_source"] == 1.0 and data["answer_kept"] == 1.0  # each town's own paragraph, whole
    assert "100.0% of the items were sent as one source whole" in CliRunner().invoke(app, args).output


def test_eval_compress_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["eval", "compress", "--questions", str(_hotpot(tmp_path)), "--format", "zip"]
    )
    assert res.exit_code == 64 and "unknown format" in res.output


def test_eval_history_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "history",
            "--questions",
            str(_hotpot(tmp_path)),
            "--turns",
            "8",
            "--plant",
            "2",
            "--window",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data["tokens_per_turn"]["ragcli"]) == 8 and data["recall"]["full transcript"] == 1.0


def test_eval_history_with_an_llm_summariser(tmp_path: Path) -> None:
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"embedder": {"type": "hash"}, "llm": {"type": "scripted", "replies": ["- Town0 in 1800."]}}
        )
    )
    args = ["eval", "history", "--questions", str(_hotpot(tmp_path)), "--turns", "8", "--plant", "2"]
    res = CliRunner().invoke(app, [*args, "--window", "2", "--llm", "-c", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    names = [n for n in data["tokens_per_turn"] if "scripted" in n]
    assert len(names) == 2 and all(len(data["tokens_per_turn"][n]) == 8 for n in names)
    assert all(data["summarizer_usage"][n]["calls"] > 0 for n in names)
