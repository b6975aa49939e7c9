"""`ragcli train sentence-model`: questions with answers in, a gated card out, and a config that loads it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.errors import InputError
from ragcli.generation.build import build_packer
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.generation.sentence_model import FEATURES, load_sentence_model
from ragcli.train.fusion_training import fit_logistic
from ragcli.train.sentence_model_training import fit_sentence_model, read_qa_pairs
from tests.unit.qa_labels_support import QUESTIONS, run_train


def _cfg(home: Path, **packing: object) -> dict[str, object]:
    return {
        "home": str(home),
        "collection": "t",
        "store": {"type": "qdrant_edge"},
        "embedder": {"type": "hash", "dim": 64},
        "ingest": {"sparse": True},
        "retrieval": {"mode": "hybrid", "top_k": 4},
        "packing": {"budget_tokens": 64, "select_sentences": True, **packing},
        "llm": {"type": "scripted"},
    }


def test_train_sentence_model_cli_gates_and_the_config_loads_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_train(tmp_path, _cfg(home), "sentence-model")
    assert result.exit_code == 0, result.output
    assert "trained sentence model mine" in result.output and "deployment gate" in result.output
    card = json.loads((home / "sentence_models" / "mine" / "ragcli_sentence_model.json").read_text())
    assert card["gate"]["queries"] == 3 and card["gate"]["baseline"] == "lexical"
    assert card["collection"] == "t" and card["budget"] == 64 and card["positives"] > 0

    cfg = parse_config(_cfg(home, sentence_model="trained:mine"))
    packer = build_packer(cfg, ScriptedLLM(["x"]))
    assert getattr(packer, "model", None) is not None
    assert load_sentence_model("trained:mine", home).features == list(FEATURES)


def test_train_sentence_model_refuses_whole_chunk_packing_and_bad_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    questions = tmp_path / "qa.jsonl"
    questions.write_text(json.dumps({"question": "q?", "answers": ["a"]}) + "\n" + "{oops\n")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(home)))
    bad = CliRunner().invoke(
        app, ["train", "sentence-model", "--questions", str(questions), "--name", "x", "-c", str(cfg_file)]
    )
    assert bad.exit_code != 0 and "qa.jsonl:2: not valid JSON" in bad.output

    whole = _cfg(home)
    whole["packing"] = {"budget_tokens": 64}
    cfg_file.write_text(yaml.safe_dump(whole))
    questions.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QUESTIONS))
    refused = CliRunner().invoke(
        app, ["train", "sentence-model", "--questions", str(questions), "--name", "x", "-c", str(cfg_file)]
    )
    assert refused.exit_code != 0 and "select_sentences is false" in refused.output


def test_read_qa_pairs_names_the_line_and_the_fix(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"question": "a?", "answer": "x"}\n\n{"id": "k", "question": "b?", "answers": ["y", "z"]}\n'
    )
    pairs = read_qa_pairs(f)
    assert [(p.id, p.question, p.answers) for p in pairs] == [("1", "a?", ("x",)), ("k", "b?", ("y", "z"))]
    for text, message in (
        ('{"question": "", "answer": "x"}', "'question' must be a non-empty string"),
        ('{"question": "a?", "answers": []}', "'answers' must be a non-empty list"),
        ('{"question": "a?", "answers": [1]}', "'answers' must be a non-empty list"),
        ("[1]", "expected a JSON object"),
        ("", "holds no questions"),
    ):
        f.write_text(text + "\n")
        with pytest.raises(InputError, match=message):
            read_qa_pairs(f)
    with pytest.raises(InputError, match="does not exist"):
        read_qa_pairs(tmp_path / "missing.jsonl")


def test_fit_learns_the_feature_that_marks_answers_and_needs_a_positive() -> None:
    rng = np.random.default_rng(0)
    digit = FEATURES.index("has_digit")
    questions = []
    for _ in range(40):
        rows = rng.random((12, len(FEATURES))).tolist()
        labels = [0] * 12
        answer = int(rng.integers(12))
        for k, r in enumerate(rows):
            r[digit] = 1.0 if k == answer else 0.0
        labels[answer] = 1
        questions.append((rows, labels))
    model = fit_sentence_model(questions, "m")
    assert max(range(len(FEATURES)), key=lambda k: model.weights[k]) == digit
    assert model.card["questions"] == 40 and model.card["positives"] == 40 and model.floor == 0.5
    with pytest.raises(InputError, match="nothing to learn"):
        fit_sentence_model([([[0.0] * len(FEATURES)], [0])], "m")


def test_balanced_logistic_weighs_rare_positives_up() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + rng.normal(scale=1.5, size=400) > 2.0).astype(float)  # ~10 % positives
    _, _, _, plain_bias = fit_logistic(x, y, l2=1.0)
    _, _, _, balanced_bias = fit_logistic(x, y, l2=1.0, balanced=True)
    assert balanced_bias > plain_bias
