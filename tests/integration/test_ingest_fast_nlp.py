"""unstructured with ragcli's regex sentence counting gives the same elements as with spaCy's, on real files.

Real pages and a PDF from docs_corpus (benchmarks/ingest_parse_speed.py compares a whole book as HTML and PDF), parsed twice by the real unstructured: once with the default
(`sentence_splitter="regex"`) and once with unstructured's own spaCy sentence splitting. And the patch is
scoped: after a parse, unstructured's module holds its own function again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("unstructured")

from ragcli.ingest.unstructured_parser import UnstructuredParser

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("RAGCLI_DATA") or REPO.parent / "shared" / "data") / "docs_corpus"
FILES = [
    "html_readability/ars-1/source.html",
    "html_readability/lwn-1/source.html",
    "pdf/004-pdflatex-4-pages/pdflatex-4-pages.pdf",
]


def _elements(path: Path, splitter: str) -> list[tuple[str, str, int, int | None]]:
    doc = UnstructuredParser(sentence_splitter=splitter).parse(path)
    return [(e.kind, e.text, e.heading_level, e.page) for e in doc.elements]


@pytest.mark.parametrize("name", FILES)
def test_regex_sentence_counting_gives_the_same_elements(name: str) -> None:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set RAGCLI_DATA to the shared data folder)")
    fast = _elements(path, "regex")
    assert fast, "nothing parsed"
    assert fast == _elements(path, "spacy")


def test_the_patch_is_scoped_and_reversible() -> None:
    import unstructured.nlp.tokenize as tok
    import unstructured.partition.text_type as text_type

    from ragcli.ingest.unstructured_nlp import regex_sent_tokenize, regex_sentences

    assert text_type.sent_tokenize is tok.sent_tokenize
    with regex_sentences(), regex_sentences():
        assert text_type.sent_tokenize is regex_sent_tokenize
    assert text_type.sent_tokenize is tok.sent_tokenize
    assert regex_sent_tokenize("One sentence here. Another one follows.") == [
        "One sentence here.",
        "Another one follows.",
    ]
