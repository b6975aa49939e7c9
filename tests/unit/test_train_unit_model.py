"""`ragcli train unit-model`: questions with answers in, a gated card out (the gate kept), and a config that
loads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.generation.build import build_compressor
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.sentence_compressor import SentenceCompressor
from ragcli.generation.unit_model import UNIT_FEATURES, load_unit_model
from tests.unit.qa_labels_support import QUESTIONS, SAMPLES, run_train

pytest.importorskip("sklearn")


def _cfg(home: Path, **compression: object) -> dict[str, object]:
    return {
        "home": str(home),
        "collection": "t",
        "store": {"type": "qdrant_edge"},
        "embedder": {"type": "hash", "dim": 64},
        "retrieval": {"top_k": 4},
        "packing": {"budget_tokens": 400},
        "compression": {"type": "sentences", "target_tokens": 40, "min_tokens": 0, **compression},
        "llm": {"type": "scripted"},
    }


def test_train_unit_model_cli_gates_and_the_config_loads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_train(tmp_path, _cfg(home), "unit-model", "--json")
    questions = tmp_path / "qa.jsonl"
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["report"]["gate_from"] == "packaged:qa-units" and data["report"]["positives"] > 0
    assert data["gate"]["queries"] == 3 and data["gate"]["baseline"] == "the compressor's weights"
    card = json.loads((home / "unit_models" / "mine" / "ragcli_unit_model.json").read_text())
    assert card["collection"] == "t" and card["labels"] == str(questions) and "decided_at" in card["gate"]

    mine = load_unit_model("trained:mine", home)
    packaged = load_unit_model("packaged:qa-units")
    assert mine.features == list(UNIT_FEATURES) and mine.trees != packaged.trees
    assert (mine.gate_weights, mine.gate_at) == (packaged.gate_weights, packaged.gate_at)  # the gate is kept
    cfg = parse_config(_cfg(home, unit_model="trained:mine"))
    comp = build_compressor(cfg, lambda t: len(t.split()))
    assert isinstance(comp, SentenceCompressor) and comp.unit_model is not None
    out = comp.compress("What is the hotel limit in Paris?", (SAMPLES / "travel-policy.md").read_text(),
                        CompressionTarget(tokens=30))  # fmt: skip
    assert 0 < out.tokens <= 30 and np.isfinite(mine.baseline)

    # a retrained card changes the answer cache's key space; the config check finds a missing one
    from ragcli.cli import _missing_trained

    assert _missing_trained(parse_config(_cfg(home, unit_model="trained:mine"))) == []
    missing = _missing_trained(parse_config(_cfg(home, unit_model="trained:other")))
    assert len(missing) == 1 and "ragcli train unit-model --name other" in missing[0]


def test_train_unit_model_gates_the_whole_source_path_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a config that sends one source whole is gated on that path: the held-out questions get the blocks'
    # similarity to the question from the store, as the query path gives it
    from ragcli.pipelines import compress_step

    seen: list[list[float | None] | None] = []
    real = compress_step.block_similarity

    def recorded(*args: Any) -> list[float | None] | None:
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(compress_step, "block_similarity", recorded)
    cfg = _cfg(tmp_path / "home", unit_model="packaged:qa-units", whole_source_tokens=400)
    result = run_train(tmp_path, cfg, "unit-model", "--json")
    assert result.exit_code == 0, result.output
    gate = json.loads(result.stdout)["gate"]
    assert gate["queries"] == 3 and gate["baseline"] == "unit_model: packaged:qa-units"
    assert seen and all(s and all(v is not None for v in s) for s in seen)  # one cosine per packed source


def test_train_unit_model_refuses_a_config_without_sentence_compression(tmp_path: Path) -> None:
    home = tmp_path / "home"
    questions = tmp_path / "qa.jsonl"
    questions.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    plain = _cfg(home)
    plain["compression"] = {"type": "none"}
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(plain))
    refused = CliRunner().invoke(
        app, ["train", "unit-model", "--questions", str(questions), "--name", "x", "-c", str(cfg_file)]
    )
    assert refused.exit_code != 0 and "compression is 'none'" in refused.output
    bad_name = CliRunner().invoke(
        app, ["train", "unit-model", "--questions", str(questions), "--name", "../up", "-c", str(cfg_file)]
    )
    assert bad_name.exit_code != 0 and not (home / "up").exists()
