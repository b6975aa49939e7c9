"""Read BEIR-format data: `corpus.jsonl` (`_id, title, text`), `queries.jsonl` (`_id, text`) and qrels
TSV (`query-id  corpus-id  score`, with a header line). Any file of these formats works, not only the shipped
sets.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcli.errors import InputError

Qrels = dict[str, dict[str, int]]
"""query id -> {doc id -> relevance grade}."""


@dataclass(frozen=True)
class BeirDoc:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and text, as BEIR's dense baselines embed them."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def _jsonl(path: Path, what: str) -> Iterator[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise InputError(f"{what} file {str(path)!r} does not exist")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(
                    f"{path}:{n}: not valid JSON ({exc}); a BEIR {what} file has one object per line"
                ) from None
            if not isinstance(row, dict) or "_id" not in row:
                raise InputError(f"{path}:{n}: expected an object with an `_id` field (BEIR {what} format)")
            yield n, row


def load_corpus(path: Path) -> dict[str, BeirDoc]:
    """The corpus by document id."""
    corpus = {
        str(row["_id"]): BeirDoc(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
        for _, row in _jsonl(path, "corpus")
    }
    if not corpus:
        raise InputError(f"corpus file {str(path)!r} holds no documents")
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    """Query text by query id."""
    return {str(row["_id"]): str(row.get("text") or "") for _, row in _jsonl(path, "queries")}


def load_qrels(path: Path) -> Qrels:
    """Relevance judgements: query id -> {doc id -> grade}. The header line is skipped."""
    if not path.is_file():
        raise InputError(f"qrels file {str(path)!r} does not exist")
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue
            if len(row) < 3:
                raise InputError(f"{path}:{n}: expected `query-id<TAB>corpus-id<TAB>score`, got {row!r}")
            try:
                grade = int(row[-1])
            except ValueError:
                raise InputError(f"{path}:{n}: the score {row[-1]!r} is not an integer") from None
            qrels.setdefault(row[0].strip(), {})[row[-2].strip()] = grade
    if not qrels:
        raise InputError(f"qrels file {str(path)!r} holds no judgements")
    return qrels
