"""Checks that run before a parser touches a file, so a bad file fails with a reason a person can act on.

Also reads a file's own metadata: Markdown front matter and a sidecar `<file>.meta.json` / `<file>.meta.yaml`,
and, before an ingest, says what a folder walk leaves out (unsupported types, symlink loops) and which `--meta`
values a file's own metadata replaces (the file's own wins: it is the more specific).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ragcli.errors import InputError
from ragcli.types import Metadata, MetaValue

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {
    ".txt",
    ".text",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".csv",
    ".tsv",
    ".json",
    ".rst",
    ".adoc",
    ".asciidoc",
}
CODE_SUFFIXES = {
    ".py",
    ".js",
    ".ts",
    ".tsx",
    ".jsx",
    ".go",
    ".rs",
    ".java",
    ".kt",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".rb",
    ".php",
    ".sh",
    ".sql",
    ".swift",
    ".scala",
    ".toml",
    ".yaml",
    ".yml",
}
BINARY_SUFFIXES = {".pdf", ".docx", ".pptx", ".epub"}
SIDECAR_SUFFIXES = (".meta.json", ".meta.yaml", ".meta.yml")
_SNIFF = 8192


class EmptyDocumentError(InputError):
    """The file is readable but holds no text to index (empty, whitespace, images only)."""


def supported_suffixes() -> set[str]:
    return TEXT_SUFFIXES | CODE_SUFFIXES | BINARY_SUFFIXES


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SIDECAR_SUFFIXES)


def check_supported(path: Path) -> str:
    """The file's lower-case suffix, or `InputError` naming the supported ones."""
    suffix = path.suffix.lower()
    if suffix not in supported_suffixes():
        shown = suffix or "(no extension)"
        raise InputError(
            f"unsupported file type {shown}; supported: {', '.join(sorted(TEXT_SUFFIXES | BINARY_SUFFIXES))} "
            "and common source-code extensions (convert the file to one of these, or leave it out)"
        )
    return suffix


def read_text(path: Path) -> str:
    """Read a text file: refuse empty and binary files; decode UTF-8/UTF-16 or a detected legacy encoding."""
    data = path.read_bytes()
    if not data.strip():
        raise EmptyDocumentError("the file is empty (0 bytes or only whitespace); nothing to index")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"starts with a UTF-16 marker but does not decode as UTF-16 ({exc.reason}); "
                "re-save it as UTF-8"
            ) from None
    if b"\x00" in data[:_SNIFF]:
        kind = _sniff_binary(data)
        raise InputError(
            f"binary content ({kind}) in a file named {path.suffix or 'without extension'}; "
            f"rename it to its real type or remove it (check with `file {path.name}`)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    guess = _detect_encoding(data)
    if guess is None:
        raise InputError(
            "text is not valid UTF-8 and no other encoding fits; convert it to UTF-8 "
            f"(e.g. `iconv -f <encoding> -t UTF-8 {path.name}`)"
        )
    log.info("%s: decoded as %s (not UTF-8)", path, guess)
    return data.decode(guess)


def _detect_encoding(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - charset_normalizer comes with requests
        return "cp1252" if _decodes(data, "cp1252") else None
    best = from_bytes(data[:200_000]).best()
    if best is None or best.encoding is None:
        return None
    # A detector always names some encoding; accept it only when the text is mostly printable.
    text = data.decode(best.encoding, errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\r\n\t\f"))
    return best.encoding if bad <= max(2, len(text) // 200) else None


def _decodes(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
        return True
    except UnicodeDecodeError:
        return False


def _sniff_binary(data: bytes) -> str:
    for magic, name in (
        (b"%PDF", "a PDF"),
        (b"PK\x03\x04", "a zip/Office file"),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"\x7fELF", "an executable"),
        (b"GIF8", "a GIF image"),
    ):
        if data.startswith(magic):
            return name
    return "NUL bytes found"


def check_pdf(path: Path) -> str | None:
    """Refuse PDFs that cannot be opened (not a PDF, password-protected); return the title from its metadata.

    A PDF that pypdf finds damaged is not refused here: pdfminer often still reads it, and the parser reports
    it as corrupt only when no reader gets text out of it.
    """
    head = path.read_bytes()[:1024]
    if not head.strip():
        raise EmptyDocumentError("the file is empty (0 bytes); nothing to index")
    if b"%PDF" not in head:
        raise InputError(
            f"not a PDF (no %PDF header; looks like {_sniff_binary(head)}); "
            "rename it to its real type or remove it"
        )
    try:
        from pypdf import PdfReader
    except ImportError:  # pragma: no cover - pypdf is in the local extra
        return None
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(
                "the PDF is password-protected; save a copy without the password "
                f"(e.g. `qpdf --decrypt --password=PASSWORD {path.name} out.pdf`) and ingest that"
            )
        title = reader.metadata.title if reader.metadata else None
        return str(title) if title else None
    except InputError:
        raise
    except Exception as exc:  # damaged xref, odd metadata: let the text extractors try
        log.debug("%s: pypdf could not open it (%s); trying the text extractors", path, exc)
        return None


def check_zip_container(path: Path) -> None:
    """Office and EPUB files are zip containers: refuse anything else before the parser chokes on it."""
    if path.stat().st_size == 0:
        raise EmptyDocumentError("the file is empty (0 bytes); nothing to index")
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"not a valid {path.suffix} file (not a zip container: corrupt, truncated or "
            "password-protected); re-save it from its application"
        )


# ---------------------------------------------------------------- metadata


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[Metadata, str]:
    """Split YAML front matter off a Markdown text; returns (metadata, the rest)."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        log.warning("front matter is not valid YAML (%s); kept as text", exc)
        return {}, text
    if not isinstance(data, dict):
        return {}, text
    return clean_metadata(data, origin="front matter"), text[m.end() :]


def read_sidecar(path: Path) -> tuple[Metadata, bytes]:
    """Metadata from `<file>.meta.json` or `<file>.meta.yaml` beside the file; also its raw bytes for hashing."""
    for suffix in SIDECAR_SUFFIXES:
        side = path.with_name(path.name + suffix)
        if side.is_file():
            raw = side.read_bytes()
            try:
                data = json.loads(raw) if suffix.endswith("json") else yaml.safe_load(raw)
            except (ValueError, yaml.YAMLError) as exc:
                raise InputError(
                    f"sidecar metadata {side.name} is not valid {suffix[6:].upper()}: {exc}; "
                    "fix it or remove it"
                ) from None
            if not isinstance(data, dict):
                raise InputError(f"sidecar metadata {side.name} must be a mapping of keys to values")
            return clean_metadata(data, origin=side.name), raw
    return {}, b""


def clean_metadata(data: dict[Any, Any], *, origin: str) -> Metadata:
    """Keep scalar and list-of-scalar values (what a payload filter can use); dates become ISO strings."""
    out: Metadata = {}
    for key, value in data.items():
        k = str(key)
        v = _scalar(value)
        if v is not None:
            out[k] = v
        elif isinstance(value, list) and value and all(_scalar(x) is not None for x in value):
            items = [_scalar(x) for x in value]
            out[k] = _homogeneous(items)
        else:
            log.debug("%s: metadata key %r skipped (nested values are not filterable)", origin, k)
    return out


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return None


def _homogeneous(items: list[Any]) -> MetaValue:
    if all(isinstance(x, int) and not isinstance(x, bool) for x in items):
        return [int(x) for x in items]
    if all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
        return [float(x) for x in items]
    return [str(x) for x in items]


# ---------------------------------------------------------------- before an ingest: what is left out, what wins

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_meta_values(meta: Mapping[str, Any], *, origin: str = "--meta") -> None:
    """Refuse metadata numbers the store cannot keep as given: integers beyond 64 bits, NaN and infinities.

    Raises:
        InputError: naming the key and the value (the store would turn a huge integer into a float silently).
    """
    for key, value in meta.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, bool):
                continue
            if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
                shown = str(v) if len(str(v)) <= 40 else f"{str(v)[:20]}... ({len(str(v))} digits)"
                raise InputError(
                    f"{origin} {key}={shown}: the integer is outside the 64-bit range the store keeps "
                    f"({INT64_MIN} to {INT64_MAX}); check the number (an id that long is better kept as "
                    "text with a letter in it)"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(f"{origin} {key}={v}: not a finite number; give a number or a word")


def skipped_in_folders(paths: Sequence[str | Path], *, skip_hidden: bool = True) -> list[tuple[str, str]]:
    """What a folder walk leaves out, with why: unsupported file types, symlink loops, broken links, linked folders.

    Mirrors `ingest_pipeline.collect_files` (which only keeps what it can read), so that nothing is skipped
    without a word. Hidden files are not listed (`ingest.skip_hidden` leaves them out on purpose); neither are
    sidecar metadata files.
    """
    suffixes = supported_suffixes()
    out: list[tuple[str, str]] = []
    for p in paths:
        root = Path(p).expanduser()
        if not root.is_dir():
            continue
        for f in sorted(root.resolve().rglob("*")):
            rel = f.relative_to(root.resolve()).parts
            if skip_hidden and any(part.startswith(".") for part in rel):
                continue
            if f.is_symlink():
                reason = _link_problem(f)
                if reason:
                    out.append((str(f), reason))
                    continue
            if f.is_file() and not is_sidecar(f) and f.suffix.lower() not in suffixes:
                out.append((str(f), f"unsupported file type {f.suffix.lower() or '(no extension)'}, skipped"))
    return out


def _link_problem(link: Path) -> str | None:
    try:
        target = link.resolve(strict=True)
    except RuntimeError:  # Python 3.11 raises RuntimeError("Symlink loop ...")
        return "a symlink loop, skipped (the link points back at itself)"
    except OSError as exc:
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:  # ELOOP
            return "a symlink loop, skipped (the link points back at itself)"
        return f"a broken symlink (its target {str(link.readlink())!r} does not exist), skipped"
    if target.is_dir():
        return "a symlink to a folder, not followed (pass the folder itself to ingest it)"
    return None


def meta_overridden(files: Iterable[Path], meta: Mapping[str, Any]) -> list[str]:
    """Where a file's own metadata (front matter, sidecar, its title) replaces a `--meta` value: one line each."""
    if not meta:
        return []
    lines: list[str] = []
    if "title" in meta:
        lines.append(f"--meta title={meta['title']} is replaced by each document's own title")
    for f in files:
        own: Metadata = {}
        if f.suffix.lower() in (".md", ".markdown"):
            try:
                head = f.read_bytes()[:65536].decode("utf-8", errors="replace")
            except OSError:
                continue
            own.update(split_front_matter(head)[0])
        with contextlib.suppress(InputError):  # the ingest reports a broken sidecar itself
            own.update(read_sidecar(f)[0])
        for key in sorted(set(own) & set(meta) - {"title"}):
            if own[key] != meta[key]:
                lines.append(f"{f}: its own {key}={own[key]} wins over --meta {key}={meta[key]}")
    return lines
