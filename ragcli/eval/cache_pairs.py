"""Labeled question pairs for the answer cache (JSONL `text_a, text_b, label`) and leak-free splits.

The same question appears in many QQP pairs. A random split by pair would put one question in both the
training and the held-out part and overstate held-out precision, so splits keep whole connected components
(questions linked by any pair) on one side.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ragcli.errors import InputError
from ragcli.generation.pair_features import normalise_question


@dataclass(frozen=True)
class LabeledPair:
    """The cache holds `text_a`, a user asks `text_b`; `label` 1 means the same question."""

    text_a: str
    text_b: str
    label: int


def load_pairs(path: Path, *, drop_exact: bool = True, limit: int | None = None) -> list[LabeledPair]:
    """Read a JSONL file of `{"text_a", "text_b", "label"}` records.

    Args:
        path: The file.
        drop_exact: Leave out pairs whose normalised texts are equal (the exact tier serves those).
        limit: Keep the first `limit` pairs only.

    Raises:
        InputError: the file is missing, or a line is not such a record (its line number is named).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(
            f"pairs file {str(path)!r} does not exist; give a JSONL file of text_a, text_b, label"
        )
    out: list[LabeledPair] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                a, b, label = str(rec["text_a"]), str(rec["text_b"]), int(rec["label"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path}:{n}: not a labeled pair ({type(exc).__name__}: {exc}); each line must be a JSON "
                    'object like {"text_a": "...", "text_b": "...", "label": 0 or 1}'
                ) from None
            if label not in (0, 1):
                raise InputError(f"{path}:{n}: label must be 0 or 1, got {label}")
            if not a.strip() or not b.strip():
                continue
            if drop_exact and normalise_question(a) == normalise_question(b):
                continue
            out.append(LabeledPair(a, b, label))
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise InputError(f"pairs file {str(path)!r} holds no usable pairs")
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _components(pairs: Sequence[LabeledPair]) -> list[int]:
    """The connected-component id of each pair, questions linked by pairs (union-find on normalised text)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = [(normalise_question(p.text_a), normalise_question(p.text_b)) for p in pairs]
    for a, b in keys:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    roots: dict[str, int] = {}
    return [roots.setdefault(find(a), len(roots)) for a, _ in keys]


def split_pairs(
    pairs: Sequence[LabeledPair], fractions: Sequence[float], *, seed: int = 0
) -> list[list[LabeledPair]]:
    """Split pairs into parts of about these fractions of the pairs, whole components per part.

    Raises:
        InputError: the fractions are not positive or sum above 1.
    """
    if not fractions or any(f <= 0 for f in fractions) or sum(fractions) > 1.0 + 1e-9:
        raise InputError(f"split fractions must be positive and sum to at most 1, got {list(fractions)}")
    comp = _components(pairs)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(comp):
        members.setdefault(c, []).append(i)
    order = list(members)
    random.Random(seed).shuffle(order)
    bounds = []
    acc = 0.0
    for f in fractions:
        acc += f
        bounds.append(acc * len(pairs))
    parts: list[list[LabeledPair]] = [[] for _ in fractions]
    filled = 0
    part = 0
    for c in order:
        while part < len(bounds) and filled >= bounds[part]:
            part += 1
        if part >= len(parts):
            break
        for i in members[c]:
            parts[part].append(pairs[i])
        filled += len(members[c])
    return parts
