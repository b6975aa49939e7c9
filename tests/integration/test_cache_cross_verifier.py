"""The cross-encoder cache verifier, trained for real from the packaged MiniLM on a small labeled set.

Quality on real pairs (QQP) is measured in benchmarks/cache_qqp.py (a few steps on templated pairs learn
the templates, not the task); here: it trains, calibrates, saves a card
of kind `cross`, loads through `open_verifier` and the CLI, scores both orders alike, and an `AnswerCache` that
holds it serves a paraphrase it scores above the threshold and nothing of another topic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.generation.answer_cache import AnswerCache
from ragcli.generation.cache_protocols import CacheScope, PairVerifier
from ragcli.generation.cache_verifier import CrossVerifier, open_verifier
from ragcli.generation.sqlite_cache_store import SqliteCacheStore
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.train.cache_verifier import VerifierRecipe, train_cache_verifier

THINGS = ["a cache", "a router", "a reranker", "a ledger", "a budget", "an embedding", "a chunk", "a tenant"]
VERBS = ["reset", "install", "delete", "rename", "configure", "debug", "measure", "share"]


def _pairs_file(path: Path) -> Path:
    """Label 1: the same question in other words; label 0: the same words about another thing or action."""
    rng = random.Random(0)
    rows = []
    for verb in VERBS:
        for thing in THINGS:
            q = f"How do I {verb} {thing}?"
            rows.append({"text_a": q, "text_b": f"What is the way to {verb} {thing}?", "label": 1})
            rows.append({"text_a": q, "text_b": f"Steps to {verb} {thing}, please", "label": 1})
            # negatives in their own words, so that the split by connected component has parts to cut
            other = rng.choice([t for t in THINGS if t != thing])
            rows.append(
                {
                    "text_a": f"Tell me how to {verb} {thing}",
                    "text_b": f"Explain how to {verb} {other}",
                    "label": 0,
                }
            )
            other_verb = rng.choice([v for v in VERBS if v != verb])
            rows.append(
                {
                    "text_a": f"I need to {verb} {thing}",
                    "text_b": f"I want to {other_verb} {thing}",
                    "label": 0,
                }
            )
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_serves_at_threshold(tmp_path: Path, verifier: PairVerifier, asked: str) -> None:
    """An `AnswerCache` holding "How do I reset a cache?" and checking with `verifier` serves `asked` from it only
    at a score at or above the verifier's threshold."""
    cache = AnswerCache(
        SqliteCacheStore(tmp_path / "cache.sqlite"),
        QdrantServerStore("cache", location=":memory:"),
        HashEmbedder(64),
        verifier=verifier,
        candidates=4,
    )
    scope = CacheScope("docs", tenant="", filter="", pipeline="p", model="m")
    cache.store("How do I reset a cache?", scope, "Run `ragcli cache clear`.")
    looked = cache.lookup(asked, scope)
    assert looked.hit is None or looked.hit.score >= verifier.threshold


def test_cross_verifier_trains_loads_and_serves(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    home = tmp_path / "home"
    recipe = VerifierRecipe(kind="cross", max_pairs=160, epochs=1, batch_size=16, target_precision=0.8)
    card = train_cache_verifier(pairs, "qa", home, recipe)
    assert card["kind"] == "cross" and card["model"] == "model" and card["pairs_used"]["calibration"] > 20
    v = open_verifier(home / "verifiers" / "qa")
    assert isinstance(v, CrossVerifier) and v.reuses("any embedder") and v.name == "qa"

    a = ["How do I reset a cache?", "How do I reset a cache?", "How do I share a tenant?"]
    b = ["What is the way to reset a cache?", "How do I reset a router?", "How do I delete a tenant?"]
    ab, ba = v.score(a, b), v.score(b, a)
    assert np.allclose(ab, ba) and ((ab >= 0) & (ab <= 1)).all()

    if card["threshold"] is not None:  # the CLI reports the same card; the cache serves through it
        assert_serves_at_threshold(tmp_path, v, "How do I reset a router?")

    r = CliRunner().invoke(app, ["eval", "cache", "--pairs", str(pairs), "--verifier", "qa", "--json"],
                           env={"RAGCLI_HOME": str(home)})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["held_out_pairs"] > 0

    # a cross-encoder the user already has (here: the one just trained) is calibrated as it is, not retrained
    r = CliRunner().invoke(
        app,
        ["train", "cache-verifier", "--pairs", str(pairs), "--name", "mine", "--kind", "cross",
         "--base", str(home / "verifiers" / "qa" / "model"), "--max-pairs", "160", "--json"],
        env={"RAGCLI_HOME": str(home)},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    mine = json.loads(r.stdout)
    assert mine["kind"] == "cross" and mine["recipe"]["epochs"] == 0 and "final_loss" not in mine
    again = open_verifier(home / "verifiers" / "mine")
    assert np.allclose(again.score(a, b), ab, atol=1e-5)


def test_cli_refuses_a_bad_recipe(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    env = {"RAGCLI_HOME": str(tmp_path / "home")}
    args = ["train", "cache-verifier", "--pairs", str(pairs), "--name", "x"]
    r = CliRunner().invoke(app, [*args, "--kind", "bi"], env=env)
    assert r.exit_code == 64 and "kind must be one of cosine, aligned, head, cross" in r.output
    r = CliRunner().invoke(app, [*args, "--kind", "cross"], env=env)
    assert r.exit_code == 64 and "give base" in r.output
    r = CliRunner().invoke(
        app, [*args, "--kind", "cross", "--epochs", "0", "--base", str(tmp_path / "nope")], env=env
    )
    assert r.exit_code == 64 and "could not load" in r.output and "nope" in r.output
