"""The learned sentence scorer of the packer: features, interleaving, cards, and what it changes in a pack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ragcli.config import PackingConfig, load_config
from ragcli.errors import ResourceMissing
from ragcli.generation.build import build_packer
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.generation.sentence_model import (
    CARD,
    FEATURES,
    SentenceModel,
    SentenceScores,
    interleave,
    load_sentence_model,
    sentence_features,
)
from ragcli.generation.token_budget_packer import TokenBudgetPacker
from ragcli.types import Chunk, Hit


def words(text: str) -> int:
    return len(text.split())


def hit(i: int, text: str, score: float) -> Hit:
    return Hit(Chunk(id=f"c{i}", doc_id=f"d{i}", text=text, source=f"doc{i}.md"), score)


def digit_model() -> SentenceModel:
    """A model that only likes sentences holding a digit."""
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("has_digit")] = 5.0
    return SentenceModel("digits", weights, 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES))


def test_interleave_alternates_the_two_rankings_first_one_first() -> None:
    first = [3.0, 2.0, 1.0, 0.0]  # order a b c d
    second = [0.0, 1.0, 2.0, 3.0]  # order d c b a
    merged = interleave(first, second)
    order = sorted(range(4), key=lambda j: -merged[j])
    assert order == [0, 3, 1, 2]  # a (first's best), d (second's best), b, c
    assert interleave([], []) == []


def test_features_one_row_per_sentence_in_feature_order() -> None:
    sentences = ["Paris is the capital of France.", "It was founded in 250 BC by the Parisii."]
    rows = sentence_features(
        "When was Paris founded?",
        sentences,
        [0, 1],
        [1.0, 1.0],
        [0, 0],
        SentenceScores(titled=[2.0, 1.0], own=[1.0, 0.5], hop=[0.0, 0.0], combined=[2.0, 1.0]),
    )
    assert len(rows) == 2 and all(len(r) == len(FEATURES) for r in rows)
    f = {name: [r[k] for r in rows] for k, name in enumerate(FEATURES)}
    assert f["first_sentence"] == [1.0, 0.0]
    assert f["has_digit"] == [0.0, 1.0]
    assert f["titled_lexical"] == [1.0, 0.5]
    assert f["titled_rank_inv"] == [1.0, 0.5]
    assert f["has_new_name"] == [1.0, 1.0]  # "France"; "It", "BC", "Parisii"


def test_a_model_lets_in_the_answer_sentence_that_shares_no_word_with_the_question() -> None:
    # "built" is not in the answer sentence, so the lexical ranking alone never picks it
    text = "The tower was built for a fair. The tower is tall and made of iron. Work ended in 1889."
    hits = [hit(0, text, 1.0)]
    question = "When was the tower built?"
    lexical = TokenBudgetPacker(words, select_sentences=True).pack(question, hits, 16)
    learned = TokenBudgetPacker(words, select_sentences=True, sentence_model=digit_model()).pack(
        question, hits, 16
    )
    assert "1889" not in lexical.text
    assert "1889" in learned.text
    assert "built for a fair" in learned.text  # the lexical best still goes first
    assert learned.tokens <= 16


def test_a_floor_keeps_unrelated_sentences_out_of_the_leftover_budget() -> None:
    text = "The tower was built for a fair. Cats sleep a lot. Work ended in 1889."
    hits = [hit(0, text, 1.0)]
    question = "When was the tower built?"
    model = digit_model()  # logit 5 for "1889", 0 for the others
    free = TokenBudgetPacker(words, select_sentences=True, sentence_model=model).pack(question, hits, 40)
    assert "Cats sleep" in free.text and "1889" in free.text
    model.floor = 1.0
    floored = TokenBudgetPacker(words, select_sentences=True, sentence_model=model).pack(question, hits, 40)
    assert "Cats sleep" not in floored.text
    assert "1889" in floored.text and "built for a fair" in floored.text


def test_without_a_shared_word_anywhere_the_packer_still_falls_back_to_whole_chunks() -> None:
    hits = [hit(0, "Cats sleep. Dogs bark.", 1.0)]
    ctx = TokenBudgetPacker(words, select_sentences=True, sentence_model=digit_model()).pack(
        "tower height", hits, 50
    )
    assert "Cats sleep. Dogs bark." in ctx.text


def test_sentence_rows_are_what_the_packer_weighs() -> None:
    hits = [hit(0, "Paris is big. It has a river.", 1.0), hit(1, "Rome is old.", 0.5)]
    rows = TokenBudgetPacker(words, select_sentences=True).sentence_rows("Is Paris big?", hits)
    assert [text for text, _ in rows] == ["Paris is big.", "It has a river.", "Rome is old."]
    assert all(len(r) == len(FEATURES) for _, r in rows)
    assert TokenBudgetPacker(words, select_sentences=True).sentence_rows("zebra", hits) == []


def test_the_packaged_model_loads_and_the_lean_preset_uses_it() -> None:
    model = load_sentence_model("packaged:qa-sentences")
    assert model.features == list(FEATURES) and len(model.weights) == len(FEATURES)
    assert model.card["questions"] > 0
    cfg = load_config("lean")
    assert cfg.packing.sentence_model == "packaged:qa-sentences"
    packer = build_packer(cfg, ScriptedLLM(["x"]))
    assert isinstance(packer, TokenBudgetPacker) and packer.model is not None


def test_unknown_or_damaged_models_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ResourceMissing, match=r"packaged:qa-sentences"):
        load_sentence_model("packaged:nope")
    with pytest.raises(ResourceMissing, match="not found"):
        load_sentence_model(str(tmp_path / "missing"))
    card = tmp_path / CARD
    card.write_text("{not json", encoding="utf-8")
    with pytest.raises(ResourceMissing, match="not valid JSON"):
        load_sentence_model(str(card))
    good = digit_model().to_json()
    for bad in (
        {**good, "features": ["x"]},
        {**good, "weights": [1.0]},
        {**good, "bias": float("nan")},
        {**good, "scale": [0.0] * len(FEATURES)},
        {**good, "weights": ["a"] * len(FEATURES)},
        {**good, "floor": float("inf")},
    ):
        card.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ResourceMissing):
            load_sentence_model(str(tmp_path))
    card.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ResourceMissing, match="JSON object"):
        load_sentence_model(str(card))


def test_a_saved_card_round_trips(tmp_path: Path) -> None:
    model = digit_model()
    model.card["trained_on"] = "unit test"
    model.floor = 0.5
    path = model.save(tmp_path / "m")
    again = load_sentence_model(str(path))
    assert again.weights == model.weights and again.card["trained_on"] == "unit test"
    assert again.floor == 0.5


def test_config_refuses_a_model_without_sentence_selection() -> None:
    with pytest.raises(ValidationError, match="select_sentences is false"):
        PackingConfig(sentence_model="packaged:qa-sentences")
    with pytest.raises(ValidationError, match="sentence_model is empty"):
        PackingConfig(select_sentences=True, sentence_model=" ")
    assert PackingConfig(select_sentences=True, sentence_model="packaged:qa-sentences").sentence_model


def test_doctor_finds_the_packaged_sentence_model() -> None:
    from ragcli.doctor import _packaged_sentence_model

    assert "packaged:qa-sentences (14 weights, floor 0.5" in _packaged_sentence_model()
