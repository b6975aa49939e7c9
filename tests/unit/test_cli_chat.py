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


def test_chat_summary_by_the_llm_is_a_hidden_ledger_row(tmp_path: Path) -> None:
    import sqlite3

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "home": str(tmp_path / "home"),
                "store": {"type": "qdrant_edge"},
                "embedder": {"type": "hash"},
                "llm": {"type": "scripted", "replies": ["- the user asked about core hours."]},
                "chat": {"window_turns": 1, "summarizer": "llm"},
            }
        )
    )
    assert runner.invoke(app, ["ingest", str(SAMPLES / "onboarding.txt"), "-c", str(cfg)]).exit_code == 0
    result = runner.invoke(
        app, ["chat", "-c", str(cfg)], input="What are core hours?\nAnd holidays?\nAnd parking?\n\n"
    )
    assert result.exit_code == 0, result.output
    ledger = next((tmp_path / "home").rglob("ledger*.sqlite*"))
    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT stage, hidden FROM calls WHERE stage = 'summary'").fetchall()
    assert rows and all(hidden == 1 for _, hidden in rows)  # turns 1 and 2 left the one-turn window
