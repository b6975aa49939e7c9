"""The compressor's unit model: its card, its trees and gate, and when the compressor uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.errors import ResourceMissing
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.sentence_compressor import SentenceCompressor
from ragcli.generation.unit_model import (
    GATE_WORDS,
    UNIT_FEATURES,
    UnitModel,
    gate_words,
    load_unit_model,
    plain_question,
)

INDEX = UNIT_FEATURES.index("log_index")
LEAD = UNIT_FEATURES.index("lead")


def words(text: str) -> int:
    return len(text.split())


def model(*, multi_hop: bool, tree: dict[str, list[float]] | None = None, dim: int = 4) -> UnitModel:
    """A card by hand: the gate's bias decides alone; one tree (default: a later unit scores higher)."""
    n = dim + len(GATE_WORDS)
    bias = 9.0 if multi_hop else -9.0
    # split on the unit's log position: the first unit (0.0) goes left (value 0), later ones right (value 2)
    tree = tree or {
        "feature": [INDEX, 0, 0],
        "threshold": [0.5, 0.0, 0.0],
        "left": [1, 0, 0],
        "right": [2, 0, 0],
        "leaf": [0, 1, 1],
        "value": [0.0, 0.0, 2.0],
    }
    return UnitModel(
        "hand",
        "all-MiniLM-L6-v2",
        [0.0] * n,
        bias,
        [0.0] * n,
        [1.0] * n,
        [0.0] * len(GATE_WORDS),
        bias,
        [0.0] * len(GATE_WORDS),
        [1.0] * len(GATE_WORDS),
        0.3,
        -1.0,
        [tree],
    )


def test_trees_walk_each_row_to_its_leaf() -> None:
    m = model(multi_hop=False)
    rows = np.zeros((3, len(UNIT_FEATURES)))
    rows[1, INDEX] = 0.69  # log1p(1): the second unit
    rows[2, INDEX] = 1.1
    assert m.scores(rows).tolist() == [-1.0, 1.0, 1.0]
    deeper = {  # root on lead: a lead unit goes right to a second split on position
        "feature": [LEAD, 0, INDEX, 0, 0],
        "threshold": [0.5, 0.0, 1.0, 0.0, 0.0],
        "left": [1, 0, 3, 0, 0],
        "right": [2, 0, 4, 0, 0],
        "leaf": [0, 1, 0, 1, 1],
        "value": [0.0, 0.5, 0.0, 3.0, -3.0],
    }
    rows[0, LEAD] = rows[2, LEAD] = 1.0
    assert model(multi_hop=False, tree=deeper).scores(rows).tolist() == [2.0, -0.5, -4.0]


def test_gate_reads_the_vector_of_its_length_else_the_words() -> None:
    m = model(multi_hop=True)
    assert m.multi_hop("Who wrote it?", np.zeros(4, dtype=np.float32)) > 0.99
    assert m.multi_hop("Who wrote it?", np.zeros(7, dtype=np.float32)) > 0.99  # another embedder: words alone
    assert m.multi_hop("Who wrote it?") > 0.99
    assert model(multi_hop=False).multi_hop("Who wrote it?") < 0.01
    assert plain_question("Who wrote 'It', and when?") == "who wrote 'it'  and when"
    assert gate_words("Which is older, the tower of Lyon or the bridge that crosses it?")[2:] == [
        1.0,
        1.0,
        1.0,
        2.0,
    ]


SOURCES = (
    "[1] Lyon Tower\nThe Lyon Tower is a tower in Lyon. It was designed by Marcel Dupont in 1889.\n\n"
    "[2] River Rhone\nThe Rhone flows through Lyon to the sea. Boats carry goods along it every day."
)


def test_compressor_ranks_by_the_trees_only_for_single_hop_questions() -> None:
    question = "What is the Lyon Tower?"
    target = CompressionTarget(tokens=18)
    plain = SentenceCompressor(words, fill=False).compress(question, SOURCES, target, block_scores=[1.0, 0.2])
    assert "a tower in Lyon" in plain.text and "Marcel Dupont" not in plain.text
    single = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=False))
    out = single.compress(question, SOURCES, target, block_scores=[1.0, 0.2])
    assert "designed by Marcel Dupont in 1889" in out.text  # a later unit: the hand-made trees prefer it
    assert out.text.startswith("[1] Lyon Tower")  # the citation comes with it
    multi = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=True))
    assert multi.compress(question, SOURCES, target, block_scores=[1.0, 0.2]).text == plain.text


def test_a_sure_single_hop_question_gets_its_best_source_whole() -> None:
    question = "What is the Lyon Tower?"
    target = CompressionTarget(tokens=18)
    whole = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=False), whole_source_tokens=40)
    out = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2])
    first = SOURCES.split("\n\n")[0]
    assert out.whole_source and out.text == first  # the source of the best unit, whole
    assert out.tokens == words(first) == 19 > out.target_tokens  # over the target: the user allowed 40
    cut = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2])
    assert cut.text == out.text  # the same call twice, the same answer
    # a source over whole_source_tokens, a multi-hop question, or one that weighs two things: cut to target
    short = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=False), whole_source_tokens=10)
    multi = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=True), whole_source_tokens=40)
    for comp, q in ((short, question), (multi, question), (whole, "Is the Lyon Tower or the Rhone older?")):
        done = comp.compress(q, SOURCES, target, block_scores=[1.0, 0.2])
        assert not done.whole_source and done.tokens <= 18
    # another prompt part than the sources (a system prompt) is never cut down to one of its paragraphs
    system = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2], sources=False)
    assert not system.whole_source and system.tokens <= 18
    with pytest.raises(ValueError, match="whole_source_tokens"):
        SentenceCompressor(words, whole_source_tokens=-1)


def test_the_closest_source_by_embedding_adds_its_best_units() -> None:
    question = "What is the Lyon Tower?"
    target = CompressionTarget(tokens=18)
    whole = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=False), whole_source_tokens=40)
    first = SOURCES.split("\n\n")[0]
    # the embedding agrees (block 1 is closest), cannot say (None, a list of another length): the source alone
    for similarity in ([0.9, 0.1], [None, None], [0.1], None):
        out = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2], block_similarity=similarity)
        assert out.whole_source and out.text == first and out.closest_units == 0
    # it disagrees: the other source's best units come too, under their own citation
    both = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2], block_similarity=[0.2, 0.8])
    assert (
        both.whole_source and both.closest_units == 2 and both.text.startswith(first + "\n[2] River Rhone\n")
    )
    assert "flows through Lyon" in both.text
    # given as a function, it is read only when a source is sent whole (a store read the rest need not pay)
    calls: list[int] = []

    def lazily() -> list[float | None]:
        calls.append(1)
        return [0.2, 0.8]

    lazy = whole.compress(question, SOURCES, target, block_scores=[1.0, 0.2], block_similarity=lazily)
    assert (lazy.text, lazy.closest_units) == (both.text, 2)
    multi = SentenceCompressor(words, fill=False, unit_model=model(multi_hop=True), whole_source_tokens=40)
    assert not multi.compress(question, SOURCES, target, block_similarity=lazily).whole_source
    assert calls == [1]
    from ragcli.errors import ConfigError
    from ragcli.generation.build import build_compressor

    with pytest.raises(ConfigError, match="unit_model: packaged:qa-units"):
        parse_config({"compression": {"type": "sentences", "whole_source_tokens": 256}})
    cfg = parse_config(
        {"compression": {"type": "sentences", "unit_model": "packaged:qa-units", "whole_source_tokens": 256}}
    )
    comp = build_compressor(cfg, words)
    assert isinstance(comp, SentenceCompressor) and comp.whole_source_tokens == 256


def test_gate_embeds_the_plain_question() -> None:
    seen: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return np.zeros((len(texts), 4), dtype=np.float32)

    comp = SentenceCompressor(words, unit_model=model(multi_hop=False), question_embed=embed)
    comp.compress("What is the Lyon Tower?", SOURCES, CompressionTarget(tokens=18))
    assert seen == [["what is the lyon tower"]]


def test_unit_rows_have_every_feature() -> None:
    rows, plain = SentenceCompressor(words).unit_rows("What is the Lyon Tower?", SOURCES, [1.0, 0.2])
    assert rows.shape == (len(plain), len(UNIT_FEATURES))
    assert np.isfinite(rows).all()
    assert plain[0].startswith("The Lyon Tower")
    assert rows[0, UNIT_FEATURES.index("retrieval")] == 1.0
    assert rows[-1, UNIT_FEATURES.index("retrieval")] == 0.0


def test_packaged_card_loads_and_scores() -> None:
    m = load_unit_model("packaged:qa-units")
    assert m.dim == 384 and m.embedder == "all-MiniLM-L6-v2"
    assert len(m.trees) > 10
    rows, _ = SentenceCompressor(words).unit_rows("What is the Lyon Tower?", SOURCES, [1.0, 0.2])
    assert np.isfinite(m.scores(rows)).all()
    again = UnitModel.from_json(json.loads(json.dumps(m.to_json())), "copy")
    assert np.allclose(again.scores(rows), m.scores(rows))


def test_bad_cards_and_names_are_refused(tmp_path: Path) -> None:
    card = model(multi_hop=False).to_json()
    with pytest.raises(ResourceMissing, match="ragcli train unit-model"):
        UnitModel.from_json({**card, "features": ["lexical"]}, "x")
    broken = {**card, "trees": [{**card["trees"][0], "left": [7, 0, 0]}]}
    with pytest.raises(ResourceMissing, match="damaged"):
        UnitModel.from_json(broken, "x")
    with pytest.raises(ResourceMissing, match="damaged"):
        UnitModel.from_json({**card, "gate_scale": [0.0] * 10}, "x")
    with pytest.raises(ResourceMissing, match="damaged"):
        UnitModel.from_json({**card, "baseline": float("nan")}, "x")
    with pytest.raises(ResourceMissing, match="have: packaged:qa-units"):
        load_unit_model("packaged:nope")
    with pytest.raises(ResourceMissing, match="train one with `ragcli train unit-model"):
        load_unit_model("trained:mine", tmp_path)
    saved = model(multi_hop=False).save(tmp_path / "mine")
    assert load_unit_model(str(saved)).trees == card["trees"]


def test_config_names_the_unit_model_and_the_gate_gets_vectors_of_its_embedder() -> None:
    from ragcli.generation.build import build_compressor

    cfg = parse_config({"compression": {"type": "sentences", "unit_model": "packaged:qa-units"}})

    def embed(texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 384), dtype=np.float32)

    same = build_compressor(cfg, words, embed, embedder_name="all-MiniLM-L6-v2")
    other = build_compressor(cfg, words, embed, embedder_name="text-embedding-3-small")
    assert isinstance(same, SentenceCompressor) and same.unit_model is not None
    assert same.question_embed is embed
    assert isinstance(other, SentenceCompressor) and other.question_embed is None
    off = build_compressor(parse_config({"compression": {"type": "sentences"}}), words)
    assert isinstance(off, SentenceCompressor) and off.unit_model is None
    with pytest.raises(ResourceMissing, match="not found"):
        build_compressor(parse_config({"compression": {"type": "sentences", "unit_model": "/nope"}}), words)


def test_doctor_finds_the_packaged_unit_model() -> None:
    from ragcli.doctor import _packaged_unit_model

    assert "trees, gate on all-MiniLM-L6-v2" in _packaged_unit_model()


def test_a_packed_source_named_by_another_is_bridged() -> None:
    """The bridge bonus reads a packed source's title without its `[n] ` and ` | section` (it never fired on
    packed sources before 2026-12-04)."""
    text = (
        "[1] Tower of Lights\nThe Tower of Lights was designed by Marcel Dupont.\n\n"
        "[2] Marcel Dupont (engineer) | Life\nHe was a French engineer born in 1851."
    )
    rows, plain = SentenceCompressor(words).unit_rows(
        "When was the designer of the Tower of Lights born?", text
    )
    bridged = rows[:, UNIT_FEATURES.index("bridged")]
    assert plain[1].startswith("He was") and bridged[1] == 1.0 and bridged[0] == 0.0
