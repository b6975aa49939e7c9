"""Question-answering sets for `ragcli eval qa`: HotpotQA (IRCoT format) and NQ-Open with gold passages.

Every paragraph of the file is pooled into one corpus, so each question is asked against all of them (the
distractors of every other question included). A paragraph's id is a hash of its title and text: identical
paragraphs shared by several questions are stored once, and the ids are stable across runs and files.

Formats (one JSON object per line):

- `hotpotqa`: `question_id, question_text, answers_objects[] {spans[], number, date}, contexts[] {id, title,
  paragraph_text, is_supporting}`.
- `nq`: `question, answers[], ctxs[] {title, text, isgold?}` and an optional `id`. The gold passages are the
  contexts marked `isgold: true`; a line whose contexts carry no `isgold` key takes its first context as gold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragcli.errors import InputError

QAFormat = Literal["hotpotqa", "nq"]
FORMATS: tuple[QAFormat, ...] = ("hotpotqa", "nq")


@dataclass(frozen=True)
class Paragraph:
    """One passage of the pooled corpus."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class QAItem:
    """One question with its gold answers and the ids of its gold (supporting) paragraphs."""

    id: str
    question: str
    answers: tuple[str, ...]
    supporting: tuple[str, ...]
    paragraphs: tuple[str, ...] = ()
    """Ids of the paragraphs that came with this question in the file (gold and distractors)."""


@dataclass
class QADataset:
    """The questions of one file and the pooled corpus of all its paragraphs."""

    path: str
    format: QAFormat
    questions: list[QAItem]
    paragraphs: dict[str, Paragraph] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """A hash of the pooled corpus (ids are content hashes): equal corpora share an index."""
        h = hashlib.sha256()
        for pid in sorted(self.paragraphs):
            h.update(pid.encode())
        return h.hexdigest()[:16]


def paragraph_id(title: str, text: str) -> str:
    """A stable id from the paragraph's content."""
    return "p" + hashlib.sha1(f"{title}\x1f{text}".encode()).hexdigest()[:16]


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{n}: not valid JSON ({exc.msg}); the file must hold one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def _require(row: dict[str, Any], key: str, kind: type, where: str, fmt: str) -> Any:
    value = row.get(key)
    if not isinstance(value, kind):
        got = "missing" if value is None else type(value).__name__
        raise InputError(
            f"{where}: `{key}` must be a {kind.__name__} ({got}); is this really a {fmt!r} file? "
            f"Formats: {', '.join(FORMATS)}"
        )
    return value


def _hotpot_answers(objs: list[Any]) -> list[str]:
    """Spans, else a number, else a date written out: the IRCoT answer object."""
    out: list[str] = []
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        spans = [s for s in obj.get("spans") or [] if isinstance(s, str) and s.strip()]
        if spans:
            out.extend(spans)
        elif str(obj.get("number") or "").strip():
            out.append(str(obj["number"]).strip())
        elif isinstance(obj.get("date"), dict):
            d = obj["date"]
            date = " ".join(str(d.get(k) or "").strip() for k in ("day", "month", "year")).strip()
            if date:
                out.append(" ".join(date.split()))
    return out


def _add(pool: dict[str, Paragraph], title: str, text: str) -> str:
    pid = paragraph_id(title, text)
    pool.setdefault(pid, Paragraph(pid, title, text))
    return pid


def _load_hotpotqa(path: Path) -> QADataset:
    pool: dict[str, Paragraph] = {}
    items: list[QAItem] = []
    for n, row in _lines(path):
        where = f"{path}:{n}"
        question = _require(row, "question_text", str, where, "hotpotqa")
        contexts = _require(row, "contexts", list, where, "hotpotqa")
        answers = _hotpot_answers(_require(row, "answers_objects", list, where, "hotpotqa"))
        own: list[str] = []
        gold: list[str] = []
        for ctx in contexts:
            if not isinstance(ctx, dict) or not isinstance(ctx.get("paragraph_text"), str):
                raise InputError(f"{where}: each context needs `title` and `paragraph_text` strings")
            pid = _add(pool, str(ctx.get("title") or ""), ctx["paragraph_text"])
            own.append(pid)
            if ctx.get("is_supporting"):
                gold.append(pid)
        qid = str(row.get("question_id") or f"hotpotqa-{n}")
        items.append(QAItem(qid, question.strip(), tuple(answers), tuple(dict.fromkeys(gold)), tuple(own)))
    return QADataset(str(path), "hotpotqa", items, pool)


def _load_nq(path: Path) -> QADataset:
    pool: dict[str, Paragraph] = {}
    items: list[QAItem] = []
    for n, row in _lines(path):
        where = f"{path}:{n}"
        question = _require(row, "question", str, where, "nq")
        answers = [a for a in _require(row, "answers", list, where, "nq") if isinstance(a, str) and a.strip()]
        ctxs = row.get("ctxs") or []
        if not isinstance(ctxs, list):
            raise InputError(f"{where}: `ctxs` must be a list of {{title, text}} objects")
        own: list[str] = []
        gold: list[str] = []
        marked = any(isinstance(c, dict) and "isgold" in c for c in ctxs)
        for i, ctx in enumerate(ctxs):
            if not isinstance(ctx, dict) or not isinstance(ctx.get("text"), str):
                raise InputError(f"{where}: each entry of `ctxs` needs `title` and `text` strings")
            pid = _add(pool, str(ctx.get("title") or ""), ctx["text"])
            own.append(pid)
            if (marked and ctx.get("isgold")) or (not marked and i == 0):
                gold.append(pid)
        qid = str(row.get("id") or f"nq-{n}")
        items.append(QAItem(qid, question.strip(), tuple(answers), tuple(dict.fromkeys(gold)), tuple(own)))
    return QADataset(str(path), "nq", items, pool)


def load_qa(path: str | Path, fmt: str) -> QADataset:
    """Load a question file of format `hotpotqa` or `nq` and pool its paragraphs.

    Raises:
        InputError: the file is missing, the format unknown, or a line does not match the format.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown question format {fmt!r}; use one of: {', '.join(FORMATS)}")
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"question file {str(p)!r} does not exist; pass a JSONL file of format {fmt!r}")
    data = _load_hotpotqa(p) if fmt == "hotpotqa" else _load_nq(p)
    if not data.questions:
        raise InputError(f"{p}: no questions found; the file is empty")
    return data
