"""TokenBudgetPacker: budget, sentence trim, citations, order, sentence selection."""

from __future__ import annotations

import random
import re

import pytest

from ragcli.generation.sentence_selector import LexicalSentenceSelector, split_sentences, terms
from ragcli.generation.token_budget_packer import TokenBudgetPacker, header
from ragcli.types import Chunk, Hit


def words(text: str) -> int:
    return len(text.split())


def chars4(text: str) -> int:
    return (len(text) + 3) // 4


def hit(i: int, text: str, score: float, page: int | None = None, section: tuple[str, ...] = ()) -> Hit:
    return Hit(
        Chunk(id=f"c{i}", doc_id=f"d{i}", text=text, source=f"doc{i}.md", section_path=section, page=page),
        score,
    )


FRANCE = (
    "Paris is the capital of France. It has two million people. The Seine runs through it. Rents are high."
)
HITS = [
    hit(0, FRANCE, 0.9, page=3, section=("Europe", "France")),
    hit(1, "Berlin is the capital of Germany. It is large. The wall fell in 1989.", 0.8),
    hit(2, "Cats sleep a lot. Dogs bark at night. Birds sing in the morning.", 0.7),
    hit(3, "Rome is very old. It has been the capital of Italy since 1871.", 0.6),
    hit(4, "Madrid lies at the centre of Spain. It is the capital and the largest city.", 0.5),
]


def blocks_of(text: str) -> list[str]:
    return [b for b in text.split("\n\n") if b]


@pytest.mark.parametrize("select", [False, True])
@pytest.mark.parametrize("count", [words, chars4])
def test_budget_is_never_exceeded(select: bool, count: object) -> None:
    rng = random.Random(7)
    vocab = [
        "the",
        "capital",
        "of",
        "a",
        "city",
        "river",
        "people",
        "large",
        "old",
        "new",
        "when",
        "where",
        "who",
        "built",
        "tower",
        "bridge",
    ]
    for trial in range(40):
        hits = []
        for i in range(rng.randint(1, 8)):
            sentences = [
                " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25))).capitalize() + "."
                for _ in range(rng.randint(1, 8))
            ]
            hits.append(hit(i, " ".join(sentences), rng.random()))
        hits.sort(key=lambda h: -h.score)
        packer = TokenBudgetPacker(count, select_sentences=select, sentence_neighbors=trial % 2)  # type: ignore[arg-type]
        for budget in (0, 5, 17, 40, 90, 300, 5000):
            ctx = packer.pack("who built the old tower bridge", hits, budget)
            assert ctx.tokens <= budget
            assert ctx.tokens == (count(ctx.text) if ctx.text else 0)  # type: ignore[operator]
            assert ctx.hits_used + ctx.hits_dropped == len(hits)


def test_everything_fits_whole_with_a_large_budget() -> None:
    ctx = TokenBudgetPacker(words, order="relevance").pack("capital of France", HITS, 10_000)
    assert ctx.hits_used == 5 and ctx.hits_dropped == 0 and not ctx.truncated
    for h in HITS:
        assert h.chunk.text in ctx.text


def test_last_chunk_is_trimmed_at_a_sentence_boundary() -> None:
    packer = TokenBudgetPacker(words, order="relevance", fill="rank", min_trim_tokens=4)
    whole = words(header(1, HITS[0].chunk) + "\n" + FRANCE) + words(header(2, HITS[1].chunk))
    ctx = packer.pack("q", HITS, whole + 10)  # room for [2]'s header and two of its three sentences
    assert ctx.hits_used == 2 and ctx.truncated
    second = blocks_of(ctx.text)[1].split("\n", 1)[1]
    assert HITS[1].chunk.text.startswith(second)
    assert second.endswith(".") and second != HITS[1].chunk.text


def test_first_hit_alone_too_long_is_trimmed_not_dropped() -> None:
    ctx = TokenBudgetPacker(words).pack("q", HITS[:1], 20)
    assert ctx.hits_used == 1 and ctx.truncated
    assert ctx.text.endswith("people.")


def test_chunk_without_sentence_boundary_is_cut_at_a_word() -> None:
    long = hit(0, " ".join(["word"] * 200), 1.0)
    ctx = TokenBudgetPacker(words).pack("q", [long], 50)
    assert ctx.hits_used == 1 and ctx.truncated and ctx.text.endswith("…")
    assert ctx.tokens <= 50


def test_strongest_hit_comes_first_even_when_long() -> None:
    long_top = hit(0, FRANCE * 3, 0.95)
    short = [hit(i, f"Short note number {i}.", 0.5) for i in range(1, 6)]
    ctx = TokenBudgetPacker(words, order="relevance").pack("q", [long_top, *short], 60)
    assert ctx.citations[0].chunk_id == "c0"


def test_density_fill_prefers_relevance_per_token_after_the_top_hit() -> None:
    top = hit(0, "Top answer sentence.", 1.0)
    long_mid = hit(1, "Long middling text. " * 20, 0.6)
    short_mid = hit(2, "Short middling text.", 0.55)
    budget = words(header(1, top.chunk) + "\nTop answer sentence.") + words(header(2, short_mid.chunk)) + 6
    ctx = TokenBudgetPacker(words, order="relevance", min_trim_tokens=100).pack(
        "q", [top, long_mid, short_mid], budget
    )
    assert [c.chunk_id for c in ctx.citations] == ["c0", "c2"]
    rank = TokenBudgetPacker(words, order="relevance", fill="rank", min_trim_tokens=100)
    assert [c.chunk_id for c in rank.pack("q", [top, long_mid, short_mid], budget).citations] == ["c0", "c2"]


def test_citations_map_back_to_blocks() -> None:
    ctx = TokenBudgetPacker(words).pack("capital", HITS, 10_000)
    by_id = {h.chunk.id: h.chunk for h in HITS}
    for n, block in enumerate(blocks_of(ctx.text), start=1):
        head, body = block.split("\n", 1)
        cit = ctx.citations[n - 1]
        assert cit.number == n and head.startswith(f"[{n}] ")
        chunk = by_id[cit.chunk_id]
        assert cit.source == chunk.source and head.startswith(f"[{n}] {chunk.source}")
        assert body == chunk.text
    first = next(c for c in ctx.citations if c.chunk_id == "c0")
    assert first.section == "Europe > France" and first.page == 3
    assert "[1] doc0.md | Europe > France | page 3" in ctx.text


def test_edges_order_puts_strongest_first_and_second_last() -> None:
    ctx = TokenBudgetPacker(words, order="edges").pack("q", HITS, 10_000)
    assert [c.chunk_id for c in ctx.citations] == ["c0", "c2", "c4", "c3", "c1"]
    rel = TokenBudgetPacker(words, order="relevance").pack("q", HITS, 10_000)
    assert [c.chunk_id for c in rel.citations] == ["c0", "c1", "c2", "c3", "c4"]


def test_duplicates_and_empty_chunks_are_skipped() -> None:
    hits = [HITS[0], HITS[0], hit(9, "   ", 0.9), HITS[1]]
    ctx = TokenBudgetPacker(words).pack("q", hits, 10_000)
    assert ctx.hits_used == 2 and ctx.hits_dropped == 2


def test_no_hits_or_no_budget_gives_empty_context() -> None:
    assert TokenBudgetPacker(words).pack("q", [], 100).text == ""
    ctx = TokenBudgetPacker(words).pack("q", HITS, 0)
    assert ctx.text == "" and ctx.tokens == 0 and ctx.citations == []


def test_sentence_selection_keeps_relevant_sentences_in_document_order() -> None:
    packer = TokenBudgetPacker(words, select_sentences=True, order="relevance")
    ctx = packer.pack("How many people live in Paris, the capital of France?", HITS, 10_000)
    first = blocks_of(ctx.text)[0]
    assert "Paris is the capital of France." in first and "two million people" in first
    assert first.index("Paris is") < first.index("two million")
    assert "Rents are high" not in first and "Seine" not in first
    assert "Cats sleep" not in ctx.text  # a hit with no word in common is dropped
    assert ctx.stats.selection_used and ctx.stats.sentences_kept < ctx.stats.sentences_total
    assert ctx.tokens < TokenBudgetPacker(words).pack("q", HITS, 10_000).tokens


def test_sentence_selection_keeps_neighbours_and_marks_gaps() -> None:
    text = "Alpha one. Beta two. Gamma target word. Delta four. Epsilon five. Zeta target again. Eta seven."
    packer = TokenBudgetPacker(words, select_sentences=True, sentence_neighbors=1)
    body = packer.pack("target", [hit(0, text, 1.0)], 10_000).text.split("\n", 1)[1]
    assert body == "Beta two. Gamma target word. Delta four. Epsilon five. Zeta target again. Eta seven."
    lone = TokenBudgetPacker(words, select_sentences=True).pack("gamma alpha", [hit(0, text, 1.0)], 1000)
    assert lone.text.split("\n", 1)[1] == "Alpha one. … Gamma target word."


def test_sentence_selection_falls_back_to_chunks_when_nothing_matches() -> None:
    packer = TokenBudgetPacker(words, select_sentences=True)
    ctx = packer.pack("zyzzyva quokka", HITS, 10_000)
    assert ctx.hits_used == 5 and not ctx.stats.selection_used


def test_sentence_selection_respects_min_score() -> None:
    strict = TokenBudgetPacker(words, select_sentences=True, min_sentence_score=1e9)
    ctx = strict.pack("capital", HITS, 1000)
    assert not ctx.text.count("…")
    assert not ctx.stats.selection_used


def test_split_sentences_handles_abbreviations_and_lines() -> None:
    text = "Dr. Smith met J. Doe, e.g. at noon. Then they left!\nA new line\n\nStill going? Yes."
    got = [text[s.start : s.end] for s in split_sentences(text)]
    assert got == [
        "Dr. Smith met J. Doe, e.g. at noon.",
        "Then they left!",
        "A new line",
        "Still going?",
        "Yes.",
    ]


def test_lexical_selector_scores_overlap_and_ignores_stopwords() -> None:
    sel = LexicalSentenceSelector()
    scores = sel.score(
        "What is the capital of France?", ["The capital of France is Paris.", "It is what it is."]
    )
    assert scores[0] > 0 and scores[1] == 0
    assert terms("Prices of the cities") == ["price", "city"]


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="order"):
        TokenBudgetPacker(words, order="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sentence_neighbors"):
        TokenBudgetPacker(words, sentence_neighbors=-1)


def test_numbers_in_text_are_sequential() -> None:
    ctx = TokenBudgetPacker(words).pack("q", HITS, 10_000)
    assert re.findall(r"^\[(\d+)\]", ctx.text, flags=re.M) == ["1", "2", "3", "4", "5"]


def test_sentence_ranking_uses_the_chunk_title_for_pronoun_sentences() -> None:
    a = hit(
        0,
        "Scott Derrickson is a director. He was born in 1966 in Denver.",
        0.9,
        section=("Scott Derrickson",),
    )
    b = hit(1, "Many people were born in 1966 somewhere.", 0.8)
    packer = TokenBudgetPacker(words, select_sentences=True)
    ctx = packer.pack("When was Scott Derrickson born?", [a, b], 13)
    assert ctx.text == "[1] doc0.md | Scott Derrickson\nHe was born in 1966 in Denver."


def test_second_hop_finds_the_bridge_entity() -> None:
    from ragcli.generation.sentence_selector import expansion_terms

    first = hit(0, "2014 S/S is the debut album of South Korean boy group Winner. It sold well.", 0.9)
    second = hit(
        1, "Winner was created by YG Entertainment in 2013. Their fans are called Inner Circle.", 0.5
    )
    noise = hit(2, "Albums are sold in shops. Fans buy many albums every year.", 0.8)
    question = "2014 S/S is the debut album of a South Korean boy group that was formed by who?"
    assert "winner" in expansion_terms(question, [first.chunk.text], [1.0])
    with_hop = TokenBudgetPacker(words, select_sentences=True).pack(question, [first, noise, second], 40)
    without = TokenBudgetPacker(words, select_sentences=True, expand_query=False).pack(
        question, [first, noise, second], 40
    )
    assert "YG Entertainment" in with_hop.text and "YG Entertainment" not in without.text
    assert with_hop.tokens <= 40 and without.tokens <= 40


def test_split_sentences_joins_hard_wrapped_lines_and_splits_lists() -> None:
    text = "Attach the invitation to the expense\nreport and the limit does not apply.\n- first item\n- second item\n1. step"
    got = [text[s.start : s.end] for s in split_sentences(text)]
    assert got == [
        "Attach the invitation to the expense\nreport and the limit does not apply.",
        "- first item",
        "- second item",
        "1. step",
    ]


def test_adaptive_cutoff_sends_one_chunk_when_relevance_falls_off() -> None:
    hits = [hit(0, FRANCE, 0.9), hit(1, "Berlin is in Germany.", 0.4), hit(2, "Cats sleep a lot.", 0.3)]
    packer = TokenBudgetPacker(words, min_relative_score=0.7)
    ctx = packer.pack("What is the capital of France?", hits, 1000)
    assert [c.chunk_id for c in ctx.citations] == ["c0"]
    assert ctx.hits_used == 1 and ctx.hits_dropped == 2
    # without the cut-off the room is filled with every hit
    assert TokenBudgetPacker(words).pack("What is the capital of France?", hits, 1000).hits_used == 3


def test_adaptive_cutoff_keeps_close_second_hop_and_min_hits() -> None:
    hits = [hit(0, FRANCE, 0.9), hit(1, "Berlin is in Germany.", 0.85), hit(2, "Cats sleep a lot.", 0.2)]
    by_ratio = TokenBudgetPacker(words, min_relative_score=0.8).pack("q", hits, 1000)
    assert sorted(c.chunk_id for c in by_ratio.citations) == ["c0", "c1"]
    by_gap = TokenBudgetPacker(words, max_score_gap=0.1).pack("q", hits, 1000)
    assert sorted(c.chunk_id for c in by_gap.citations) == ["c0", "c1"]
    both = TokenBudgetPacker(words, min_relative_score=0.99, max_score_gap=0.01, min_hits=2).pack(
        "q", hits, 1000
    )
    assert sorted(c.chunk_id for c in both.citations) == ["c0", "c1"]
    # negative scores (raw logits): the ratio test is skipped, the gap test still applies
    logits = [hit(0, FRANCE, -1.0), hit(1, "Berlin is in Germany.", -1.2), hit(2, "Cats sleep a lot.", -6.0)]
    cut = TokenBudgetPacker(words, min_relative_score=0.9, max_score_gap=1.0).pack("q", logits, 1000)
    assert sorted(c.chunk_id for c in cut.citations) == ["c0", "c1"]


def test_adaptive_cutoff_applies_with_sentence_selection() -> None:
    hits = [hit(0, FRANCE, 0.9), hit(1, "Paris has a capital of Germany too.", 0.3)]
    ctx = TokenBudgetPacker(words, select_sentences=True, min_relative_score=0.5).pack(
        "What is the capital of France?", hits, 1000
    )
    assert [c.chunk_id for c in ctx.citations] == ["c0"]


@pytest.mark.parametrize(
    "kwargs",
    [{"min_relative_score": 1.5}, {"min_relative_score": -0.1}, {"max_score_gap": -1.0}, {"min_hits": 0}],
)
def test_adaptive_cutoff_arguments_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TokenBudgetPacker(words, **kwargs)  # type: ignore[arg-type]
