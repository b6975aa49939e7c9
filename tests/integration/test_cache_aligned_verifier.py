"""The `aligned` cache verifier with the real packaged MiniLM: token alignment, training, the card, serving.

Quality on real pairs (QQP) is measured in benchmarks/cache_aligned.py; here: the features say what they claim on
real token vectors, the verifier trains with its regression cross-fitted on the calibration part, loads through
`open_verifier` and the CLI, refuses a card of other features, and serves through an `AnswerCache`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import ResourceMissing
from ragcli.generation.cache_verifier import AlignedVerifier, open_verifier
from ragcli.generation.token_alignment import ALIGN_FEATURES, ALIGNED_INPUT, TokenEncoder
from ragcli.resources import PACKAGED_EMBEDDER
from ragcli.train.cache_verifier import ALIGN_FOLDS, VerifierRecipe, train_cache_verifier
from tests.integration.test_cache_cross_verifier import _pairs_file, assert_serves_at_threshold


def test_the_worst_matched_token_shows_the_word_that_differs() -> None:
    enc = TokenEncoder(PACKAGED_EMBEDDER)
    q = "How do I delete a branch?"
    repo, paraphrase = "How do I delete a repo?", "How can I remove a branch?"
    x = enc.pair_inputs([q, q, q], [q, repo, paraphrase])
    col = {name: i for i, name in enumerate(ALIGNED_INPUT)}
    assert x.shape == (3, len(ALIGNED_INPUT))
    assert x[0, col["cosine"]] == pytest.approx(1.0, abs=1e-4)
    assert x[0, col["both_min"]] == pytest.approx(1.0, abs=1e-4) and x[0, col["both_below_0.6"]] == 0
    assert x[0, col["tokens_a"]] == x[0, col["tokens_b"]] > 0
    # the paraphrase's every token finds a good match; "repo" finds none ("branch" neither, the other way)
    assert x[2, col["both_min"]] > 0.7 > x[1, col["both_min"]]
    assert x[2, col["a_to_b_below_0.5"]] == 0 < x[1, col["a_to_b_below_0.5"]]
    assert x[1, col["b_to_a_below_0.5"]] > 0
    # a text on its own or in a batch gets the same vectors (the batch's padding is cut)
    pooled, tokens = enc.encode([repo])
    pooled2, tokens2 = enc.encode([repo, "A much longer question that pads the batch, with many more words?"])
    assert np.allclose(pooled[0], pooled2[0], atol=1e-5) and np.allclose(tokens[0], tokens2[0], atol=1e-5)
    assert len(ALIGN_FEATURES) == 15


def test_aligned_verifier_trains_loads_and_serves(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    home = tmp_path / "home"
    recipe = VerifierRecipe(kind="aligned", max_pairs=256, epochs=0, target_precision=0.8)
    card = train_cache_verifier(pairs, "al", home, recipe)
    folder = home / "verifiers" / "al"
    assert card["kind"] == "aligned" and card["encoder"] == PACKAGED_EMBEDDER
    assert card["features"] == list(ALIGNED_INPUT) and card["head"]["hidden"] == 0
    assert f"{ALIGN_FOLDS} folds" in card["head"]["fitted_on"] and not (folder / "encoder").exists()
    assert card["calibration"]["pairs"] == card["pairs_used"]["calibration"]
    v = open_verifier(folder)
    assert isinstance(v, AlignedVerifier) and v.reuses("any embedder") and v.embed(["a", "b"]).shape == (2, 0)

    a = ["How do I reset a cache?", "How do I reset a cache?", "How do I share a tenant?"]
    b = ["What is the way to reset a cache?", "Explain how to reset a router", "I want to delete a tenant"]
    s = v.score(a, b)
    assert ((s >= 0) & (s <= 1)).all() and s[0] > s[1] and s[0] > s[2]
    assert np.allclose(v.score_vectors(a, b, np.zeros((3, 0)), np.zeros((3, 0))), s)
    assert v.score([], []).shape == (0,)

    if card["threshold"] is not None:
        assert_serves_at_threshold(tmp_path, v, "Explain how to reset a router")

    env = {"RAGCLI_HOME": str(home)}
    r = CliRunner().invoke(
        app, ["eval", "cache", "--pairs", str(pairs), "--verifier", "al", "--json"], env=env
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["held_out_pairs"] > 0
    r = CliRunner().invoke(
        app,
        ["train", "cache-verifier", "--pairs", str(pairs), "--name", "cli", "--kind", "aligned",
         "--max-pairs", "160"],
        env=env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "trained aligned cache verifier 'cli'" in r.output
    assert json.loads((home / "verifiers" / "cli" / "card.json").read_text())["kind"] == "aligned"

    # a card of other input columns (another version) is refused with the fix
    changed = json.loads((folder / "card.json").read_text())
    changed["features"] = changed["features"][:-1]
    (folder / "card.json").write_text(json.dumps(changed))
    with pytest.raises(ResourceMissing, match="retrain it"):
        open_verifier(folder)
