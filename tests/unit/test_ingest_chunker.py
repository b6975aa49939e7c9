"""StructureChunker: sections stay whole, long ones split at paragraphs/sentences, hard max never exceeded."""

from __future__ import annotations

import pytest

from ragcli.ingest.chunking_profiles import PROFILES, ChunkLimits, resolve_limits
from ragcli.ingest.hash_embedder import WhitespaceTokenCounter
from ragcli.ingest.structure_chunker import StructureChunker, embedding_text, split_sentences
from ragcli.types import Document, Element


class SpecialTokenCounter:
    """Words plus 2 special tokens, like a BERT tokenizer's [CLS] ... [SEP]."""

    def count(self, text: str) -> int:
        return len(text.split()) + 2


def _chunker(
    max_tokens: int = 40,
    min_tokens: int = 0,
    overlap: int = 0,
    breadcrumb: bool = True,
    counter: object | None = None,
) -> StructureChunker:
    limits = {p: ChunkLimits(max_tokens, min_tokens, overlap) for p in PROFILES}
    return StructureChunker(
        counter or WhitespaceTokenCounter(),
        limits,  # type: ignore[arg-type]
        breadcrumb_in_embedding=breadcrumb,
    )


def _doc(elements: list[Element], title: str = "Doc", content_type: str = "prose") -> Document:
    return Document(
        id="d1",
        source="/tmp/d1.md",
        title=title,
        elements=elements,
        content_type=content_type,
        content_hash="h",
    )


def _words(n: int, word: str = "w") -> str:
    """n words in sentences of 8; each sentence starts with a capital letter and ends with a period."""
    out = []
    for i in range(n):
        w = f"{word}{i}"
        out.append(w.capitalize() if i % 8 == 0 else w + "." if i % 8 == 7 else w)
    return " ".join(out)


def test_section_that_fits_is_one_chunk_with_its_heading() -> None:
    doc = _doc(
        [
            Element("Intro", kind="title", heading_level=1),
            Element(_words(10)),
            Element("Usage", kind="title", heading_level=1),
            Element(_words(12, "u")),
        ]
    )
    chunks = _chunker().chunk(doc)
    assert [c.section_path for c in chunks] == [("Doc", "Intro"), ("Doc", "Usage")]
    assert chunks[0].text.startswith("Intro\n\n")
    assert chunks[1].breadcrumb == "Doc > Usage"


def test_heading_hierarchy_builds_breadcrumbs() -> None:
    doc = _doc(
        [
            Element("A", kind="title", heading_level=1),
            Element("a text"),
            Element("A.1", kind="title", heading_level=2),
            Element("a1 text"),
            Element("B", kind="title", heading_level=1),
            Element("b text"),
        ]
    )
    paths = [c.section_path for c in _chunker().chunk(doc)]
    assert paths == [("Doc", "A"), ("Doc", "A", "A.1"), ("Doc", "B")]


def test_long_section_splits_at_sentences_and_never_exceeds_max() -> None:
    doc = _doc([Element("Long", kind="title", heading_level=1), Element(_words(200))])
    chunker = _chunker(max_tokens=40)
    chunks = chunker.chunk(doc)
    assert len(chunks) > 4
    for c in chunks:
        assert WhitespaceTokenCounter().count(embedding_text(c, breadcrumb=True)) <= 40
        assert c.tokens <= 40
    # splits happen at sentence ends (every 8th word ends with a period)
    assert all(c.text.rstrip().endswith(".") for c in chunks[:-1])
    # nothing lost, nothing duplicated (no overlap by default)
    joined = " ".join(c.text for c in chunks).replace("\n\n", " ").split()
    assert joined == ("Long " + _words(200)).split()


def test_max_counts_special_tokens_and_breadcrumb() -> None:
    counter = SpecialTokenCounter()
    doc = _doc([Element("Sec", kind="title", heading_level=1), Element(_words(300))], title="A long title")
    for chunk in _chunker(max_tokens=50, counter=counter).chunk(doc):
        assert counter.count(embedding_text(chunk, breadcrumb=True)) <= 50
        assert chunk.tokens == counter.count(embedding_text(chunk, breadcrumb=True))


def test_breadcrumb_not_in_text_and_optional_in_embedding() -> None:
    doc = _doc([Element("Sec", kind="title", heading_level=1), Element("body text"), Element(_words(60))])
    on = _chunker(breadcrumb=True).chunk(doc)
    off = _chunker(breadcrumb=False).chunk(doc)
    assert "Doc > Sec" not in on[0].text
    # the first chunk starts with its heading: only the levels above it are prepended (no double heading)
    assert embedding_text(on[0], breadcrumb=True) == "Doc\n\n" + on[0].text
    # a continuation chunk gets the whole breadcrumb
    assert embedding_text(on[1], breadcrumb=True).startswith("Doc > Sec\n\n")
    assert embedding_text(off[1], breadcrumb=False) == off[1].text
    assert on[1].tokens > off[1].tokens


def test_tiny_neighbours_merge_up_to_min() -> None:
    els = []
    for i in range(6):
        els += [Element(f"S{i}", kind="title", heading_level=2), Element("two words")]
    merged = _chunker(max_tokens=60, min_tokens=12).chunk(_doc(els))
    apart = _chunker(max_tokens=60, min_tokens=0).chunk(_doc(els))
    assert len(apart) == 6
    assert len(merged) < 6
    assert all(c.tokens <= 60 for c in merged)
    assert "S0" in merged[0].text and "S1" in merged[0].text


def test_long_table_splits_by_rows_repeating_header() -> None:
    rows = ["name | value"] + [f"row{i} | {i}" for i in range(60)]
    doc = _doc([Element("\n".join(rows), kind="table")], content_type="table")
    chunks = _chunker(max_tokens=40).chunk(doc)
    assert len(chunks) > 1
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[0] == "name | value"
        assert all(ln == "name | value" or (ln.startswith("row") and ln.count("|") == 1) for ln in lines)
    body = [ln for c in chunks for ln in c.text.split("\n") if ln.startswith("row")]
    assert body == rows[1:]


def test_code_is_not_cut_mid_line() -> None:
    lines = [f"x{i} = compute(a, b, c)  # step {i}" for i in range(50)]
    doc = _doc([Element("\n".join(lines), kind="code")], content_type="code")
    chunks = _chunker(max_tokens=40).chunk(doc)
    assert len(chunks) > 1
    got = [ln for c in chunks for ln in c.text.split("\n")]
    assert got == lines


def test_overlap_repeats_trailing_sentences_when_configured() -> None:
    doc = _doc([Element(_words(120))])
    no = _chunker(max_tokens=40).chunk(doc)
    yes = _chunker(max_tokens=40, overlap=10).chunk(doc)
    assert sum(len(c.text.split()) for c in yes) > sum(len(c.text.split()) for c in no)
    assert all(c.tokens <= 40 for c in yes)


def test_a_single_huge_word_is_cut_and_still_fits() -> None:
    doc = _doc([Element("x" * 5000)])
    chunks = _chunker(max_tokens=20, counter=CharCounter()).chunk(doc)
    assert all(CharCounter().count(embedding_text(c, breadcrumb=True)) <= 20 for c in chunks)
    assert "".join(c.text for c in chunks).count("x") == 5000


class CharCounter:
    """A pessimistic tokenizer: one token per 4 characters (rounded up) plus 2 specials."""

    def count(self, text: str) -> int:
        return -(-len(text) // 4) + 2


def test_ordinals_and_ids_are_deterministic() -> None:
    doc = _doc([Element(_words(100))])
    a = _chunker().chunk(doc)
    b = _chunker().chunk(doc)
    assert [c.id for c in a] == [c.id for c in b]
    assert [c.ordinal for c in a] == list(range(len(a)))
    assert len({c.id for c in a}) == len(a)


def test_split_sentences() -> None:
    assert split_sentences("One. Two? Three! four") == ["One.", "Two?", "Three! four"]


def test_profiles_resolve_and_cap_at_model_max() -> None:
    lim = resolve_limits("code", max_tokens=512, min_tokens=None, overlap_tokens=0, model_max_tokens=256)
    assert lim.max_tokens == 256 and lim.min_tokens == 0
    lim = resolve_limits(
        "markdown",
        max_tokens=200,
        min_tokens=None,
        overlap_tokens=0,
        overrides={"markdown": {"max_tokens": 120, "min_tokens": 10, "overlap_tokens": None}},
    )
    assert (lim.max_tokens, lim.min_tokens) == (120, 10)
    with pytest.raises(Exception, match="unknown chunking profile"):
        resolve_limits("poetry", max_tokens=100, min_tokens=None, overlap_tokens=0)
