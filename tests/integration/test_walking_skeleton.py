"""The whole chain on the embedded default, for real: unstructured, MiniLM, Qdrant's engine, SmolLM2, ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli.cli import app

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"
runner = CliRunner()


def test_ingest_then_query_with_citations_and_cost() -> None:
    ingested = runner.invoke(app, ["ingest", str(SAMPLES), "--collection", "skeleton", "--json"])
    assert ingested.exit_code == 0, ingested.output
    report = json.loads(ingested.stdout)
    assert report["files"]["ok"] == 4 and report["files"]["failed"] == 0
    assert report["chunks"]["added"] > 0

    asked = runner.invoke(
        app, ["query", "What is the hotel limit per night in Paris?", "--collection", "skeleton", "--json"]
    )
    assert asked.exit_code == 0, asked.output
    ans = json.loads(asked.stdout)
    assert ans["text"]
    sources = [Path(c["source"]).name for c in ans["citations"]]
    assert "travel-policy.md" in sources
    assert ans["model"] == "smollm2-135m-instruct"
    assert ans["usage"]["usd"] == 0.0 and ans["usage"]["input_tokens"] > 0
    assert [t["stage"] for t in ans["trace"]] == ["embed_query", "search", "pack", "llm"]

    cost = runner.invoke(app, ["cost", "--by", "stage", "--json"])
    assert cost.exit_code == 0, cost.output
    assert {"embed", "embed_query", "llm"} <= {g["key"] for g in json.loads(cost.stdout)["groups"]}

    again = runner.invoke(app, ["ingest", str(SAMPLES), "--collection", "skeleton", "--json"])
    assert json.loads(again.stdout)["tokens_embedded"] == 0
