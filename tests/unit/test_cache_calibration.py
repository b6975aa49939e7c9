"""Cache calibration: Wilson intervals, the precision curve, threshold choice; pair features; pair splits."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from ragcli.errors import InputError
from ragcli.eval.cache_pairs import LabeledPair, load_pairs, split_pairs
from ragcli.generation.cache_calibration import (
    choose_threshold,
    measure_at,
    precision_curve,
    wilson_interval,
)
from ragcli.generation.pair_features import FEATURE_NAMES, normalise_question, pair_features


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(95, 100)
    assert lo == pytest.approx(0.8882, abs=1e-3)
    assert hi == pytest.approx(0.9785, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.69 < lo < 0.73


def test_curve_counts_ties_together() -> None:
    curve = precision_curve([0.9, 0.9, 0.5, 0.1], [1, 0, 1, 0])
    assert [p.hits for p in curve] == [2, 3, 4]
    assert curve[0].precision == 0.5
    assert curve[1].hit_rate == 1.0


def test_choose_threshold_meets_lower_bound() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    scores = np.where(y == 1, rng.beta(5, 2, len(y)), rng.beta(2, 5, len(y)))
    cal = choose_threshold(scores, y, target_precision=0.9)
    assert cal.serves and cal.lower >= 0.9 and cal.precision >= cal.lower
    held = measure_at(scores, y, cal.threshold)
    assert held.hits == cal.hits
    # a stricter target never gives a lower threshold
    assert choose_threshold(scores, y, target_precision=0.95).threshold >= cal.threshold


def test_unreachable_target_never_serves() -> None:
    cal = choose_threshold([0.5] * 50, [1, 0] * 25, target_precision=0.95)
    assert not cal.serves and math.isinf(cal.threshold)


def test_calibration_input_errors() -> None:
    with pytest.raises(InputError, match="labeled pair"):
        choose_threshold([0.1, 0.2], [1])
    with pytest.raises(InputError, match="target precision"):
        choose_threshold([0.1], [1], target_precision=1.5)


def test_features_catch_what_embeddings_miss() -> None:
    names = dict(zip(FEATURE_NAMES, pair_features("Is Python slow?", "Is Python not slow?"), strict=True))
    assert names["negation_mismatch"] == 1.0
    names = dict(zip(FEATURE_NAMES, pair_features("Best phone in 2019?", "Best phone in 2020?"), strict=True))
    assert names["numbers_differ"] == 1.0
    names = dict(
        zip(
            FEATURE_NAMES,
            pair_features("How do I learn Java fast?", "How do I learn Python fast?"),
            strict=True,
        )
    )
    assert names["names_jaccard"] == 0.0 and names["names_unshared"] > 0
    names = dict(
        zip(FEATURE_NAMES, pair_features("Why is the sky blue?", "How is the sky blue?"), strict=True)
    )
    assert names["wh_mismatch"] == 1.0
    same = pair_features("What is AI?", "what is ai")
    assert same[FEATURE_NAMES.index("same_text")] == 1.0
    assert pair_features("a b c", "c d") == pair_features("c d", "a b c")


def test_normalise_question() -> None:
    assert normalise_question("  What's   the TIME?! ") == "what's the time"


def test_load_pairs_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    rows = [{"text_a": "a?", "text_b": "A", "label": 1}, {"text_a": "x", "text_b": "y", "label": 0}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = load_pairs(f)
    assert pairs == [LabeledPair("x", "y", 0)]  # the exact repeat is dropped
    f.write_text('{"text_a": "x"}\n')
    with pytest.raises(InputError, match=r"p.jsonl:1: not a labeled pair"):
        load_pairs(f)
    with pytest.raises(InputError, match="does not exist"):
        load_pairs(tmp_path / "missing.jsonl")


def test_split_keeps_questions_on_one_side() -> None:
    rng = random.Random(1)
    qs = [f"question {i}" for i in range(400)]
    pairs = [LabeledPair(rng.choice(qs), rng.choice(qs), rng.randint(0, 1)) for _ in range(200)]
    train, held = split_pairs(pairs, [0.7, 0.3], seed=3)
    assert len(train) + len(held) == len(pairs)
    side_a = {normalise_question(t) for p in train for t in (p.text_a, p.text_b)}
    side_b = {normalise_question(t) for p in held for t in (p.text_a, p.text_b)}
    assert not side_a & side_b
    with pytest.raises(InputError):
        split_pairs(pairs, [0.8, 0.8])
