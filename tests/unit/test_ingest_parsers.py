"""The readers that need no parsing library, the file checks, and main-content HTML extraction."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.errors import InputError
from ragcli.ingest.file_checks import EmptyDocumentError, check_pdf, read_text, split_front_matter
from ragcli.ingest.plain_text_parser import PlainTextParser, markdown_elements, text_elements

MD = """---
title: The Guide
tags: [a, b]
---
# Install

Run **pip** with [the docs](http://x).

```python
def f():

    return 1
```

- one
- two

| a | b |
|---|---|
| 1 | 2 |

Sub
---

Text.
"""


def test_markdown_structure_is_kept() -> None:
    meta, body = split_front_matter(MD)
    assert meta == {"title": "The Guide", "tags": ["a", "b"]}
    els = markdown_elements(body)
    kinds = [(e.kind, e.heading_level) for e in els]
    assert kinds == [("title", 1), ("narrative", 0), ("code", 0), ("list", 0), ("table", 0), ("title", 2),
                     ("narrative", 0)]  # fmt: skip
    assert els[1].text == "Run pip with the docs."
    assert els[2].text == "def f():\n\n    return 1"  # the blank line inside the fence does not split it
    assert els[4].text == "| a | b |\n| 1 | 2 |"


def test_plain_text_titles_and_paragraphs() -> None:
    els = text_elements("CHAPTER I\n\nIt is a truth universally\nacknowledged, that a man.\n\n- a\n- b\n")
    assert [(e.kind, e.text) for e in els] == [
        ("title", "CHAPTER I"),
        ("narrative", "It is a truth universally acknowledged, that a man."),
        ("list", "- a\n- b"),
    ]


def test_read_text_reasons(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match="empty"):
        read_text(f)
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(InputError, match=r"binary content \(a PNG image\)"):
        read_text(f)
    f.write_bytes("héllo wörld".encode("utf-16"))
    assert read_text(f) == "héllo wörld"
    f.write_bytes("Ünïcödé façade, déjà vu — naïve café.".encode("cp1252", errors="replace"))
    assert "façade" in read_text(f)


def test_pdf_checks(tmp_path: Path) -> None:
    f = tmp_path / "x.pdf"
    f.write_bytes(b"PK\x03\x04zipzip")
    with pytest.raises(InputError, match="not a PDF"):
        check_pdf(f)
    f.write_bytes(b"")
    with pytest.raises(EmptyDocumentError):
        check_pdf(f)


def test_unsupported_and_unstructured_only_types(tmp_path: Path) -> None:
    parser = PlainTextParser()
    (tmp_path / "a.bin").write_bytes(b"x")
    with pytest.raises(InputError, match=r"unsupported file type \.bin"):
        parser.parse(tmp_path / "a.bin")
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match="need unstructured"):
        parser.parse(tmp_path / "a.pdf")


def test_html_main_content_drops_boilerplate() -> None:
    pytest.importorskip("lxml")
    from ragcli.ingest.html_main_content import extract_main_html, html_title

    page = (
        "<html><head><title>T</title></head><body><nav>Home | About | Contact</nav>"
        "<div class='sidebar'>Related links everywhere</div><div id='content'>"
        + "<p>This is the article text, with commas, and enough words to count as content.</p>" * 5
        + "</div><footer>Copyright 2024</footer></body></html>"
    )
    main = extract_main_html(page)
    assert "article text" in main
    assert "Home | About" not in main and "Copyright" not in main and "Related links" not in main
    assert html_title(page) == "T"


def test_pdf_without_unstructured_pdf_extras_falls_back_to_pdfminer(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pdfminer")
    pytest.importorskip("unstructured")
    from ragcli.ingest import unstructured_parser as up

    def missing(kind: str) -> None:
        raise ImportError("No module named 'pikepdf'")

    monkeypatch.setattr(up, "_partitioner", missing)
    monkeypatch.setattr(up, "prepare_unstructured", lambda: None)
    doc = up.UnstructuredParser().parse(data_dir / "docs_corpus" / "pdf" / "021-pdfa" / "crazyones-pdfa.pdf")
    assert doc.content_type == "pdf" and any("crazy ones" in e.text.lower() for e in doc.elements)
    assert all(e.page == 1 for e in doc.elements)
