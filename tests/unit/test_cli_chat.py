"""`ragcli chat` keeps history across turns and counts it; plumbing only (fake embedder, scripted LLM)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from ragcli.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
runner = CliRunner()


def test_chat_two_turns(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "store": {"type": "qdrant_edge"},
                "embedder": {"type": "hash"},
                "llm": {"type": "scripted", "replies": ["First [1].", "Second [1]."]},
            }
        )
    )
    ok = runner.invoke(app, ["ingest", str(SAMPLES / "onboarding.txt"), "-c", str(cfg)])
    assert ok.exit_code == 0, ok.output
    result = runner.invoke(app, ["chat", "-c", str(cfg)], input="What are core hours?\nAnd holidays?\n\n")
    assert result.exit_code == 0, result.output
    assert "First [1]." in result.output and "Second [1]." in result.output
    # two turns, each an embedding call and an LLM call; the second prompt carries the first turn as history
    assert "session: 4 calls" in result.output
