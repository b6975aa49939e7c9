"""`ragcli cache ...`, `ragcli eval cache`, `ragcli train cache-verifier`: exit codes and messages; training on fakes."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.eval.cache_eval import evaluate_pairs
from ragcli.eval.cache_pairs import load_pairs
from ragcli.generation.cache_verifier import CacheVerifier
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.train.cache_verifier import VerifierRecipe, calibrate_verifier, train_cache_verifier

runner = CliRunner()


def _pairs_file(path: Path, n: int = 400) -> Path:
    """Synthetic pairs: label 1 = the same words reordered, label 0 = another topic."""
    rng = random.Random(0)
    topics = [f"topic{i} alpha{i} beta{i} gamma{i}" for i in range(n)]
    rows = []
    for i, t in enumerate(topics):
        words = t.split()
        if i % 2:
            rows.append(
                {"text_a": f"how about {t}", "text_b": " ".join(rng.sample(words, len(words))), "label": 1}
            )
        else:
            rows.append({"text_a": f"how about {t}", "text_b": f"what is {topics[(i + 7) % n]}", "label": 0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_calibrate_and_eval_on_fakes(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    recipe = VerifierRecipe(kind="head", epochs=0, max_pairs=400, head_epochs=20, target_precision=0.9)
    card = train_cache_verifier(pairs, "fake", tmp_path / "home", recipe, embedder=HashEmbedder(64))
    assert card["encoder"] == "hash-64" and card["pairs_used"]["calibration"] > 50
    assert card["threshold"] is not None and card["calibration"]["lower"] >= 0.9
    folder = tmp_path / "home" / "verifiers" / "fake"
    v = CacheVerifier(folder, embedder=HashEmbedder(64))
    report = evaluate_pairs(v, load_pairs(pairs), name="fake", target_precision=0.9)
    assert report.held_out.precision >= 0.9 and report.curve
    again = calibrate_verifier(folder, pairs, target_precision=0.8, embedder=HashEmbedder(64))
    assert again["calibration"]["target_precision"] == 0.8 and again["calibration_history"]


def test_cli_errors_exit_64(tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", "cache"])
    assert r.exit_code == 64 and "exactly one of --pairs" in r.output
    r = runner.invoke(app, ["cache", "invalidate"])
    assert r.exit_code == 64 and "--source" in r.output
    r = runner.invoke(
        app, ["train", "cache-verifier", "--pairs", str(tmp_path / "nope.jsonl"), "--name", "x"]
    )
    assert r.exit_code == 64 and "does not exist" in r.output
    r = runner.invoke(app, ["cache", "calibrate", "--pairs", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 64 and "ragcli train cache-verifier" in r.output


def test_cli_stats_and_list_on_an_empty_cache() -> None:
    r = runner.invoke(app, ["cache", "stats", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["entries"] == 0
    r = runner.invoke(app, ["cache", "list", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == []
    r = runner.invoke(app, ["cache", "optimize"])
    assert r.exit_code == 0 and "optimised the answer cache's index" in r.output
