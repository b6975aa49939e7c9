"""The parser's fast path around unstructured: scoped sentence patch, honest import errors, argument checks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.ingest.unstructured_nlp import regex_sent_tokenize
from ragcli.ingest.unstructured_parser import UnstructuredParser


def test_regex_sent_tokenize_keeps_unstructured_contract() -> None:
    assert regex_sent_tokenize("First one here. Second one there! Third?") == [
        "First one here.",
        "Second one there!",
        "Third?",
    ]
    assert regex_sent_tokenize("no end stop") == ["no end stop"]
    assert regex_sent_tokenize("   ") == []


def test_sentence_splitter_is_validated() -> None:
    with pytest.raises(InputError, match="sentence_splitter 'nltk' is not regex or spacy"):
        UnstructuredParser(sentence_splitter="nltk")


def test_patch_is_scoped_and_restored_even_on_error() -> None:
    pytest.importorskip("unstructured")
    import unstructured.nlp.tokenize as tok
    import unstructured.partition.text_type as text_type

    from ragcli.ingest.unstructured_nlp import regex_sentences

    with pytest.raises(RuntimeError), regex_sentences():
        assert text_type.sent_tokenize is regex_sent_tokenize
        raise RuntimeError("a partitioner failed")
    assert text_type.sent_tokenize is tok.sent_tokenize


def test_missing_pdf_module_is_named_not_the_installed_extra(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("pdfminer")
    pytest.importorskip("unstructured")
    from ragcli.ingest import unstructured_parser as up

    def missing(kind: str) -> None:
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(up, "_partitioner", missing)
    monkeypatch.setattr(up, "prepare_unstructured", lambda: None)
    monkeypatch.setattr(up, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger=up.__name__):
        doc = up.UnstructuredParser().parse(
            data_dir / "docs_corpus" / "pdf" / "021-pdfa" / "crazyones-pdfa.pdf"
        )
    assert doc.elements  # read anyway, through pdfminer
    assert "No module named 'matplotlib'" in caplog.text and "pip install matplotlib" in caplog.text
    assert "ragcli[local]" not in caplog.text
