"""Parsing with unstructured: txt, md, html/htm (main content only), pdf (fast strategy), docx, pptx, epub.

CSV, JSON and source code are read by the plain readers (no pandas needed). Every file is checked first
(empty, binary with a text extension, encoding, encrypted or corrupt PDF, broken zip container), so a bad
file fails with a reason a person can act on and never stops a batch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ragcli.errors import InputError, ResourceMissing
from ragcli.ingest.file_checks import (
    CODE_SUFFIXES,
    EmptyDocumentError,
    check_pdf,
    check_supported,
    check_zip_container,
    read_text,
    split_front_matter,
)
from ragcli.ingest.html_main_content import extract_main_html, html_title
from ragcli.ingest.parsed import build_document
from ragcli.ingest.plain_text_parser import (
    PlainTextParser,
    markdown_elements,
    profile_for,
)
from ragcli.types import Element, ElementKind, Metadata

log = logging.getLogger(__name__)

_KIND: dict[str, ElementKind] = {
    "Title": "title",
    "NarrativeText": "narrative",
    "Text": "narrative",
    "UncategorizedText": "narrative",
    "Address": "narrative",
    "EmailAddress": "narrative",
    "FigureCaption": "narrative",
    "Formula": "other",
    "ListItem": "list",
    "List": "list",
    "Table": "table",
    "CodeSnippet": "code",
}
# Page furniture and non-text: never indexed.
_DROP = {"Header", "Footer", "PageNumber", "PageBreak", "Image", "Picture"}
_READY = False


def prepare_unstructured() -> None:
    """Make unstructured offline: no telemetry, and its spaCy model from the packaged copy (never a download)."""
    global _READY
    if _READY:
        return
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    from ragcli.resources import spacy_model_dir

    model_dir = spacy_model_dir()
    try:
        import spacy
        import unstructured.nlp.tokenize as tok
    except ImportError as exc:
        raise ResourceMissing("unstructured is not installed; run `pip install 'ragcli[local]'`") from exc
    loaded: dict[str, Any] = {}

    def load_packaged(*_args: Any, **_kwargs: Any) -> Any:
        if "nlp" not in loaded:
            loaded["nlp"] = spacy.load(str(model_dir))
        return loaded["nlp"]

    if hasattr(tok, "_load_spacy_model"):
        cached = getattr(tok._load_spacy_model, "cache_clear", None)
        if cached:
            cached()
        tok._load_spacy_model = load_packaged
    _READY = True


class UnstructuredParser:
    """Parses one file into a `Document` with element kinds, page numbers and heading levels.

    Args:
        pdf_strategy: unstructured's PDF strategy; `fast` reads the text layer (no OCR, no layout model).
        html_main_content: Keep only the main content of HTML pages (drop navigation and boilerplate).
        markdown_reader: `builtin` keeps fenced code and heading levels exactly; `unstructured` uses
            unstructured's Markdown partitioner.
    """

    def __init__(self, *, pdf_strategy: str = "fast", html_main_content: bool = True,
                 markdown_reader: str = "builtin") -> None:
        if pdf_strategy not in ("fast", "auto", "hi_res", "ocr_only"):
            raise InputError(f"pdf_strategy {pdf_strategy!r} is not one of fast, auto, hi_res, ocr_only")
        if markdown_reader not in ("builtin", "unstructured"):
            raise InputError(f"markdown_reader {markdown_reader!r} is not builtin or unstructured")
        self._pdf_strategy = pdf_strategy
        self._html_main = html_main_content
        self._md_reader = markdown_reader
        self._plain = PlainTextParser()

    def parse(self, path: Path) -> Any:
        suffix = check_supported(path)
        if suffix in (".csv", ".tsv", ".json") or suffix in CODE_SUFFIXES:
            return self._plain.parse(path)
        meta: Metadata = {}
        title_hint: str | None = None
        if suffix in (".md", ".markdown"):
            meta, text = split_front_matter(read_text(path))
            if self._md_reader == "builtin":
                elements = markdown_elements(text)
            else:
                elements = self._partition("md", text=text)
        elif suffix in (".html", ".htm"):
            html = read_text(path)
            title_hint = html_title(html)
            main = extract_main_html(html) if self._html_main else html
            elements = self._partition("html", text=main)
        elif suffix in (".txt", ".text", ".rst", ".adoc", ".asciidoc"):
            elements = self._partition("text", text=read_text(path))
        elif suffix == ".pdf":
            check_pdf(path)
            elements = self._partition("pdf", filename=str(path), strategy=self._pdf_strategy)
        else:
            check_zip_container(path)
            elements = self._partition(suffix.lstrip("."), filename=str(path))
        if not any(e.text.strip() for e in elements):
            reason = ("no extractable text: the PDF seems to hold only images (scanned pages); OCR is not enabled"
                      if suffix == ".pdf" else "no text found in the file; nothing to index")
            raise EmptyDocumentError(reason)
        return build_document(path, elements, profile_for(suffix), meta, title_hint=title_hint)

    def _partition(self, kind: str, **kwargs: Any) -> list[Element]:
        prepare_unstructured()
        try:
            fn = _partitioner(kind)
        except ImportError as exc:
            raise ResourceMissing(f"unstructured cannot read .{kind} files here ({exc}); "
                                  "run `pip install 'ragcli[local]'`") from exc
        try:
            raw = fn(**kwargs)
        except (InputError, ResourceMissing):
            raise
        except Exception as exc:
            raise InputError(f"could not be parsed as .{kind} ({type(exc).__name__}: {exc}); "
                             "check that the file opens in its application, or re-export it") from exc
        return to_elements(raw)


def _partitioner(kind: str) -> Any:
    if kind == "text":
        from unstructured.partition.text import partition_text

        return partition_text
    if kind == "md":
        from unstructured.partition.md import partition_md

        return partition_md
    if kind == "html":
        from unstructured.partition.html import partition_html

        return partition_html
    if kind == "pdf":
        from unstructured.partition.pdf import partition_pdf

        return partition_pdf
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx
    if kind == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx
    if kind == "epub":
        from unstructured.partition.epub import partition_epub

        return partition_epub
    raise InputError(f"no unstructured partitioner for .{kind}")  # pragma: no cover - suffixes checked before


def _table_rows(html: str | None, text: str) -> str:
    """A table as `cell | cell` lines (header first), so it can be split by rows."""
    if not html:
        return text
    try:
        import lxml.html

        root = lxml.html.fromstring(html)
    except Exception:
        return text
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(td.text_content().split()) for td in tr if td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or text


def to_elements(raw: list[Any]) -> list[Element]:
    """unstructured elements -> ours: kinds, heading levels (category_depth + 1), pages; lists grouped."""
    out: list[Element] = []
    for el in raw:
        category = getattr(el, "category", type(el).__name__)
        if category in _DROP:
            continue
        text = str(getattr(el, "text", "") or "")
        if not text.strip():
            continue
        md = getattr(el, "metadata", None)
        page = getattr(md, "page_number", None)
        kind = _KIND.get(category, "other")
        if kind == "table":
            out.append(Element(_table_rows(getattr(md, "text_as_html", None), text), kind="table", page=page))
        elif kind == "code":
            out.append(Element(text.strip("\n"), kind="code", page=page))
        elif kind == "list":
            item = "- " + " ".join(text.split())
            if out and out[-1].kind == "list" and out[-1].page == page:
                out[-1] = Element(out[-1].text + "\n" + item, kind="list", page=page)
            else:
                out.append(Element(item, kind="list", page=page))
        elif kind == "title":
            depth = getattr(md, "category_depth", None)
            level = int(depth) + 1 if isinstance(depth, int) and depth >= 0 else 0
            out.append(Element(" ".join(text.split()), kind="title", heading_level=level, page=page))
        else:
            out.append(Element(" ".join(text.split()), kind=kind, page=page))
    return out
