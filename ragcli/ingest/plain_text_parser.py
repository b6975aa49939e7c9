"""Readers that need no parsing library: plain text, Markdown, CSV, JSON and source code.

`PlainTextParser` is the light fallback when unstructured is not installed (.txt, .md and the formats above),
and `UnstructuredParser` delegates CSV, JSON and code to it.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path

from ragcli.errors import InputError
from ragcli.ingest.file_checks import (
    CODE_SUFFIXES,
    EmptyDocumentError,
    check_supported,
    read_text,
    split_front_matter,
)
from ragcli.ingest.parsed import build_document
from ragcli.types import Document, Element, Metadata

_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^(```|~~~)")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_INLINE = (
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> its alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref] -> text
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), " "),  # raw HTML tags -> their text
)


def clean_inline(text: str) -> str:
    """Markdown inline markup -> the words a reader sees (links keep their text, entities decoded)."""
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return " ".join(html.unescape(text).split())


def text_elements(text: str) -> list[Element]:
    """Plain text: blank-line paragraphs; a short line alone in its paragraph, without an end stop, is a title."""
    out: list[Element] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln.strip() for ln in block.strip().split("\n") if ln.strip()]
        if not lines:
            continue
        if all(_LIST.match(ln) for ln in lines):
            out.append(Element("\n".join(lines), kind="list"))
            continue
        joined = " ".join(lines)
        is_title = (
            len(lines) == 1
            and len(joined) <= 80
            and not joined.endswith((".", ",", ";", ":", "?", "!"))
            and any(c.isalpha() for c in joined)
            and len(joined.split()) <= 10
        )
        out.append(
            Element(joined, kind="title" if is_title else "narrative", heading_level=1 if is_title else 0)
        )
    return out


def markdown_elements(text: str) -> list[Element]:
    """Markdown: ATX/setext headings with levels, fenced code, lists, pipe tables, paragraphs."""
    out: list[Element] = []
    para: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")

    def flush() -> None:
        if not para:
            return
        if all(_LIST.match(p) for p in para):
            out.append(Element("\n".join(clean_inline(p.strip()) for p in para), kind="list"))
        elif len(para) > 1 and all(p.strip().startswith("|") for p in para):
            rows = [p.strip() for p in para if not re.fullmatch(r"\|?[\s:|-]+\|?", p.strip())]
            out.append(Element("\n".join(rows), kind="table"))
        else:
            out.append(Element(clean_inline(" ".join(p.strip() for p in para)), kind="narrative"))
        para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line.strip())
        if fence:
            flush()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                body.append(lines[i])
                i += 1
            if any(b.strip() for b in body):
                out.append(Element("\n".join(body).strip("\n"), kind="code"))
        elif m := _ATX.match(line):
            flush()
            if m.group(2):
                out.append(Element(clean_inline(m.group(2)), kind="title", heading_level=len(m.group(1))))
        elif (_RULE.match(line) and not para) or _LINK_DEF.match(line):
            flush()
        elif para and len(para) == 1 and _SETEXT.match(line) and not _LIST.match(para[0]):
            title = para.pop().strip()
            out.append(Element(title, kind="title", heading_level=1 if line.strip()[0] == "=" else 2))
        elif not line.strip():
            flush()
        else:
            if para and _LIST.match(line) and not _LIST.match(para[-1]) and not para[-1].startswith(" "):
                flush()
            para.append(line)
        i += 1
    flush()
    return out


def csv_elements(text: str, delimiter: str) -> list[Element]:
    """A CSV/TSV file: one table element, rows as `a | b | c`, the header first."""
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"not a readable CSV ({exc}); check its delimiter and quoting") from None
    lines = [" | ".join(c.strip() for c in r) for r in rows if any(c.strip() for c in r)]
    return [Element("\n".join(lines), kind="table")] if lines else []


def json_elements(text: str) -> list[Element]:
    """A JSON file: a list of records becomes one `key: value` block per record; anything else, indented text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix or remove it"
        ) from None
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return [
            Element(
                "\n".join(
                    f"{k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                    for k, v in r.items()
                ),
                kind="list",
            )
            for r in data
        ]
    return [Element(json.dumps(data, indent=2, ensure_ascii=False), kind="code")]


def code_elements(text: str) -> list[Element]:
    """Source code: blocks between blank lines, kept line-intact."""
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    return [Element(b, kind="code") for b in blocks if b.strip()]


def profile_for(suffix: str) -> str:
    """The chunking profile a file type gets by default."""
    if suffix in (".md", ".markdown"):
        return "markdown"
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".pdf":
        return "pdf"
    if suffix in (".csv", ".tsv"):
        return "table"
    if suffix in CODE_SUFFIXES or suffix == ".json":
        return "code"
    return "prose"


class PlainTextParser:
    """Parses text formats without any parsing library (the fallback when unstructured is not installed)."""

    SUFFIXES = frozenset(
        {".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".tsv", ".json", *CODE_SUFFIXES}
    )

    def parse(self, path: Path) -> Document:
        suffix = check_supported(path)
        if suffix not in self.SUFFIXES:
            raise InputError(
                f"{suffix} files need unstructured; run `pip install 'ragcli[local]'` "
                f"(without it only {', '.join(sorted(self.SUFFIXES - CODE_SUFFIXES))} and source code are read)"
            )
        text = read_text(path)
        meta: Metadata = {}
        if suffix in (".md", ".markdown"):
            meta, text = split_front_matter(text)
            elements = markdown_elements(text)
        elif suffix in (".csv", ".tsv"):
            elements = csv_elements(text, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".json":
            elements = json_elements(text)
        elif suffix in CODE_SUFFIXES:
            elements = code_elements(text)
        else:
            elements = text_elements(text)
        if not any(e.text.strip() for e in elements):
            raise EmptyDocumentError("no text found in the file; nothing to index")
        return build_document(path, elements, profile_for(suffix), meta)
