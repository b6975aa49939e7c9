"""Parsing with unstructured: txt, md, html/htm (main content only), pdf (fast strategy), docx, pptx, epub.

CSV, JSON and source code are read by the plain readers (no pandas needed). Every file is checked first
(empty, binary with a text extension, encoding, encrypted or corrupt PDF, broken zip container), so a bad
file fails with a reason a person can act on and never stops a batch.
"""

from __future__ import annotations

import logging
import os
import re
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
    text_elements,
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
_WARNED: set[str] = set()


def prepare_unstructured() -> None:
    """Make unstructured offline: no telemetry, and its spaCy model from the packaged copy (never a download)."""
    global _READY
    if _READY:
        return
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    # pdfminer warns on every malformed colour or font of real-world PDFs; those are not the user's problem.
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    from ragcli.resources import spacy_model_dir

    model_dir = spacy_model_dir()
    try:
        import unstructured.nlp.tokenize as tok
    except ImportError as exc:
        raise ResourceMissing(
            f"unstructured cannot be imported ({type(exc).__name__}: {exc}); "
            f"install the missing module{f' ({exc.name})' if exc.name else ''} or `pip install 'ragcli[local]'`"
        ) from exc

    def load_packaged() -> Any:
        # Called on the first part-of-speech check only (sentence counting does not need spaCy here, see
        # unstructured_nlp.py): the model is never loaded for a file whose texts need no tagging.
        import spacy

        # unstructured uses only the tagger and parser: skip the rest, as it does.
        return spacy.load(str(model_dir), exclude=["ner", "lemmatizer", "attribute_ruler"])

    if not hasattr(tok, "_load_spacy_model"):
        log.warning(
            "unstructured %s has no _load_spacy_model; it may try to download en_core_web_sm",
            getattr(tok, "__name__", "?"),
        )
    tok._load_spacy_model = load_packaged
    for name in ("_get_nlp", "_process_cached"):
        clear = getattr(getattr(tok, name, None), "cache_clear", None)
        if clear is not None:
            clear()
    _READY = True


class UnstructuredParser:
    """Parses one file into a `Document` with element kinds, page numbers and heading levels.

    Args:
        pdf_strategy: unstructured's PDF strategy; `fast` reads the text layer (no OCR, no layout model).
        html_main_content: Keep only the main content of HTML pages (drop navigation and boilerplate).
        markdown_reader: `builtin` keeps fenced code and heading levels exactly; `unstructured` uses
            unstructured's Markdown partitioner.
        text_reader: `builtin` splits plain text at blank lines (30 µs a document); `unstructured` runs its text
            partitioner, which tags every paragraph with spaCy to tell titles from prose (measured 0.24 s per
            SciFact abstract on this CPU, with the same elements out).
        sentence_splitter: How unstructured counts sentences when it classifies text: `regex` (ragcli's
            splitter, the same elements 5-6x faster on HTML; see unstructured_nlp.py) or `spacy` (its own).
    """

    def __init__(
        self,
        *,
        pdf_strategy: str = "fast",
        html_main_content: bool = True,
        markdown_reader: str = "builtin",
        text_reader: str = "builtin",
        sentence_splitter: str = "regex",
    ) -> None:
        if pdf_strategy not in ("fast", "auto", "hi_res", "ocr_only"):
            raise InputError(f"pdf_strategy {pdf_strategy!r} is not one of fast, auto, hi_res, ocr_only")
        for name, value in (("markdown_reader", markdown_reader), ("text_reader", text_reader)):
            if value not in ("builtin", "unstructured"):
                raise InputError(f"{name} {value!r} is not builtin or unstructured")
        if sentence_splitter not in ("regex", "spacy"):
            raise InputError(f"sentence_splitter {sentence_splitter!r} is not regex or spacy")
        self._regex_sentences = sentence_splitter == "regex"
        self._text_reader = text_reader
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
            text = read_text(path)
            if self._text_reader == "builtin":
                elements = text_elements(text)
            else:
                elements = self._partition("text", text=text)
        elif suffix == ".pdf":
            pdf_title = check_pdf(path)
            title_hint = pdf_title if pdf_title and not pdf_title.lower().startswith("microsoft") else None
            elements = self._pdf(path)
        else:
            check_zip_container(path)
            elements = self._partition(suffix.lstrip("."), filename=str(path))
        if not any(e.text.strip() for e in elements):
            reason = (
                "no extractable text: the PDF seems to hold only images (scanned pages); OCR is not enabled"
                if suffix == ".pdf"
                else "no text found in the file; nothing to index"
            )
            raise EmptyDocumentError(reason)
        return build_document(path, elements, profile_for(suffix), meta, title_hint=title_hint)

    def _pdf(self, path: Path) -> list[Element]:
        """unstructured's fast strategy; where it gets nothing (it gives up on PDFs it finds too complex),
        pdfminer's text boxes directly."""
        failure: Exception | None = None
        try:
            elements = self._partition(
                "pdf", filename=str(path), strategy=self._pdf_strategy, languages=["eng"]
            )
        except (
            ResourceMissing
        ) as exc:  # unstructured's PDF module needs extras (pikepdf, cv2, ...): read anyway
            if not _WARNED:
                log.warning("%s; reading PDFs with pdfminer alone (no title detection)", exc)
                _WARNED.add("pdf")
            elements = []
        except InputError as exc:
            elements, failure = [], exc
        if any(e.text.strip() for e in elements):
            return elements
        try:
            return pdfminer_elements(path)
        except Exception as exc:
            cause = failure or exc
            raise InputError(
                f"the PDF is corrupt or unreadable ({type(exc).__name__}: {cause}); "
                "re-export or re-download it"
            ) from exc

    def _partition(self, kind: str, **kwargs: Any) -> list[Element]:
        prepare_unstructured()
        try:
            fn = _partitioner(kind)
        except ImportError as exc:
            # Say what is really missing: a module unstructured needs for this type (matplotlib for PDFs
            # once), which `pip install 'ragcli[local]'` may already have failed to bring.
            missing = f"; install it with `pip install {exc.name}`" if exc.name else ""
            raise ResourceMissing(
                f"unstructured cannot read .{kind} files here ({type(exc).__name__}: {exc}){missing}"
            ) from exc
        try:
            if self._regex_sentences:
                from ragcli.ingest.unstructured_nlp import regex_sentences

                with regex_sentences():
                    raw = fn(**kwargs)
            else:
                raw = fn(**kwargs)
        except (InputError, ResourceMissing):
            raise
        except Exception as exc:
            raise InputError(
                f"could not be parsed as .{kind} ({type(exc).__name__}: {exc}); "
                "check that the file opens in its application, or re-export it"
            ) from exc
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


def pdfminer_elements(path: Path) -> list[Element]:
    """Text boxes of each page, read by pdfminer (the fallback when unstructured gets nothing)."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    out: list[Element] = []
    for page_no, page in enumerate(extract_pages(str(path)), 1):
        for box in page:
            if isinstance(box, LTTextContainer):
                text = " ".join(box.get_text().split())
                if text and not _PAGE_NUMBER.fullmatch(text):
                    out.append(Element(text, kind="narrative", page=page_no))
    return out


_PAGE_NUMBER = re.compile(r"(?:page\s*)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?", re.I)


def _furniture(raw: list[Any]) -> set[str]:
    """Header/footer texts that repeat (digits ignored): page furniture to drop. A header or footer that
    appears once is kept: on short pages unstructured labels real content by its position."""
    seen: dict[str, int] = {}
    for el in raw:
        if getattr(el, "category", "") in ("Header", "Footer"):
            key = re.sub(r"\d+", "#", " ".join(str(el.text).split()).lower())
            seen[key] = seen.get(key, 0) + 1
    return {k for k, n in seen.items() if n > 1}


def to_elements(raw: list[Any]) -> list[Element]:
    """unstructured elements -> ours: kinds, heading levels (category_depth + 1), pages; lists grouped."""
    out: list[Element] = []
    repeated = _furniture(raw)
    for el in raw:
        category = getattr(el, "category", type(el).__name__)
        text = str(getattr(el, "text", "") or "")
        if not text.strip() or _PAGE_NUMBER.fullmatch(text.strip()):
            continue
        if category in ("Header", "Footer"):
            if re.sub(r"\d+", "#", " ".join(text.split()).lower()) in repeated:
                continue
            category = "NarrativeText"
        if category in _DROP:
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
