"""The compressor's block pair prior: features, the packaged model, and when the compressor uses it."""

from __future__ import annotations

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.errors import ConfigError
from ragcli.generation.block_pairs import (
    PAIR_FEATURES,
    BlockPairModel,
    asked_kind,
    packaged_pair_model,
    pair_features,
    title_name,
)
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.sentence_compressor import SentenceCompressor


def words(text: str) -> int:
    return len(text.split())


# A bridge question: the tower's paragraph names its designer, whose own paragraph holds the answer. The
# distractors share the question's words ("tower", "designer", "born", "lights") but name no other paragraph.
MULTI_HOP = [
    (
        "Tower of Lights",
        "The Tower of Lights in Lyon was designed by Marcel Dupont. It opened to visitors in a spring festival.",
    ),
    ("Marcel Dupont (engineer)", "Marcel Dupont was a French engineer born in 1851. He studied in Paris."),
    (
        "Lyon Water Tower",
        "The Lyon Water Tower was built in 1880. Its designer is unknown and was born abroad.",
    ),
    ("Towers of Lyon", "The towers of Lyon have lights. Their designers were born in the region."),
    ("River Rhone", "The Rhone flows through Lyon to the sea. Boats carry goods along it."),
]
QUESTION = "In what year was the designer of the Tower of Lights born?"


def text_of(paragraphs: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"{t}\n{b}" for t, b in paragraphs)


def test_titles_and_the_asked_kind() -> None:
    assert title_name("The Fault in Our Stars (film)") == "The Fault in Our Stars"
    assert title_name("[2] The Fault in Our Stars (film) | Plot") == "The Fault in Our Stars"
    assert asked_kind("Which French ace pilot and adventurer flew L'Oiseau Blanc?") == [
        "french",
        "ace",
        "pilot",
    ]
    assert asked_kind("Who was the writer of These Boots?") == ["writer"]
    assert asked_kind("When did it open?") == []


def test_pair_features_mark_the_link_between_two_paragraphs() -> None:
    comp = SentenceCompressor(words)
    pairs, rows = comp.block_pairs(QUESTION, text_of(MULTI_HOP))
    assert len(pairs) == 10 and rows.shape == (10, len(PAIR_FEATURES))
    link = rows[:, PAIR_FEATURES.index("link")]
    assert [p for p, v in zip(pairs, link, strict=True) if v] == [(0, 1)]  # only the tower names Dupont
    named = rows[:, PAIR_FEATURES.index("title_named_sum")]
    assert named[pairs.index((0, 1))] == 1.0  # the question names "Tower of Lights", not "Marcel Dupont"
    # the packed context's headers ("[n] source | section") name the same titles
    packed = "\n\n".join(f"[{i + 1}] {t} | Overview\n{b}" for i, (t, b) in enumerate(MULTI_HOP))
    packed_rows = comp.block_pairs(QUESTION, packed)[1]
    assert np.array_equal(packed_rows[:, PAIR_FEATURES.index("link")], link)
    # one paragraph alone is not a pair; untitled blocks give no pairs to score
    assert comp.block_pairs(QUESTION, text_of(MULTI_HOP[:1]))[0] == []
    untitled = "\n\n".join(body for _, body in MULTI_HOP)
    assert comp.block_pairs(QUESTION, untitled)[0] == []
    direct = pair_features("a b", ["A", "B"], ["x", "y"], [0, 1], ["x", "y"], [0.0, 0.0])
    assert direct[0] == [(0, 1)] and np.all(np.isfinite(direct[1]))


def test_packaged_model_ranks_the_linked_pair_first() -> None:
    model = packaged_pair_model()
    assert model.weights.shape == (len(PAIR_FEATURES),) and "HotpotQA" in model.trained_on
    pairs, rows = SentenceCompressor(words).block_pairs(QUESTION, text_of(MULTI_HOP))
    scores = model.pair_scores(rows)
    assert pairs[int(np.argmax(scores))] == (0, 1)
    priors = model.block_priors(pairs, rows, len(MULTI_HOP))
    assert sorted(range(len(MULTI_HOP)), key=lambda i: -priors[i])[:2] in ([0, 1], [1, 0])


def test_the_compressor_keeps_the_second_hop_with_the_pair_prior() -> None:
    text = text_of(MULTI_HOP)
    target = CompressionTarget(tokens=34)
    assert "1851" in SentenceCompressor(words).compress(QUESTION, text, target).text
    assert "1851" not in SentenceCompressor(words, pair_weight=0.0).compress(QUESTION, text, target).text
    # the pair prior does it alone: without the bridge bonus and the fill too
    paired = SentenceCompressor(words, bridge_weight=0.0, fill=False)
    plain = SentenceCompressor(words, pair_weight=0.0, bridge_weight=0.0, fill=False)
    assert "1851" in paired.compress(QUESTION, text, target).text
    assert "1851" not in plain.compress(QUESTION, text, target).text


def test_the_second_paragraph_keeps_its_best_unit_when_the_first_crowds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The two blocks the pair prior ranks first each keep their best unit before any other unit is added:
    three sentences of the tower's paragraph that match the question's words no longer fill the target."""
    import ragcli.generation.sentence_compressor as sc

    crowded = [
        (
            "Tower of Lights",
            "The Tower of Lights in Lyon was designed by Marcel Dupont. The designer of the Tower of Lights was "
            "honoured in the year it opened. Every year the Tower of Lights and its designer are remembered.",
        ),
        *MULTI_HOP[1:],
    ]
    text, target = text_of(crowded), CompressionTarget(tokens=34)
    comp = SentenceCompressor(words, bridge_weight=0.0, fill=False)
    kept = comp.compress(QUESTION, text, target).text
    assert "born in 1851" in kept and "Tower of Lights" in kept
    monkeypatch.setattr(sc, "_PAIR_LEADS", 0)
    assert "1851" not in comp.compress(QUESTION, text, target).text
    # without the pair prior (untitled text, or turned off) no block is favoured this way
    assert (
        "1851"
        not in SentenceCompressor(words, bridge_weight=0.0, fill=False, pair_weight=0.0)
        .compress(QUESTION, text, target)
        .text
    )


def test_retrieval_scores_and_pairs_add_up_and_untitled_text_has_no_pairs() -> None:
    """The caller's scores (the retriever's) still count beside the pair prior; text without titles has no
    pairs, so its compression does not change."""
    text = text_of(MULTI_HOP)
    target = CompressionTarget(tokens=20)
    favour_river = [0.0, 0.0, 0.0, 0.0, 1.0]
    on = SentenceCompressor(words, prior_weight=3.0)
    assert "River Rhone" in on.compress(QUESTION, text, target, block_scores=favour_river).text
    assert "River Rhone" not in on.compress(QUESTION, text, target).text
    untitled = "\n\n".join(body for _, body in MULTI_HOP)
    assert (
        on.compress(QUESTION, untitled, target).text
        == SentenceCompressor(words, prior_weight=3.0, pair_weight=0.0)
        .compress(QUESTION, untitled, target)
        .text
    )


def test_model_cards_are_checked() -> None:
    card = packaged_pair_model().to_json()
    again = BlockPairModel.from_json(card)
    assert np.allclose(again.weights, packaged_pair_model().weights)
    with pytest.raises(ConfigError, match=r"compression_pairs\.py --write"):
        BlockPairModel.from_json({**card, "features": ["bm25_sum"]})
    with pytest.raises(ConfigError, match="17 weights"):
        BlockPairModel.from_json({**card, "weights": [1.0]})
    with pytest.raises(ValueError, match="pair_weight"):
        SentenceCompressor(words, pair_weight=-1.0)


def test_config_turns_the_pair_prior_off() -> None:
    from ragcli.generation.build import build_compressor
    from ragcli.generation.scripted_llm import ScriptedLLM

    on = build_compressor(parse_config({"compression": {"type": "sentences"}}), ScriptedLLM().count_tokens)
    off = build_compressor(
        parse_config({"compression": {"type": "sentences", "block_pairs": False}}), ScriptedLLM().count_tokens
    )
    assert isinstance(on, SentenceCompressor) and on.pair_weight == 1.0
    assert isinstance(off, SentenceCompressor) and off.pair_weight == 0.0


def test_doctor_finds_the_packaged_pair_model() -> None:
    from ragcli.doctor import _packaged_pair_model

    assert "17 weights" in _packaged_pair_model()
