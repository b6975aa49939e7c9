"""`ragcli eval compress`: answer kept, ratio reached and speed of a compressor on a question file.

Formats: `hotpotqa` (each question's own ~10 paragraphs as the context), `nq` (each question's passages), `kv`
(the Lost-in-the-Middle key-value file: the JSON object of pairs, the asked key in the question; kept = the exact
`"key": "value"` pair). Answer kept: a SQuAD-normalised gold answer occurs in the compressed text.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragcli.errors import InputError
from ragcli.eval.normalize import answer_in_text, is_yes_no
from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.protocols import Compressor

FORMATS = ("hotpotqa", "nq", "kv")


@dataclass
class CompressionReport:
    format: str
    method: str
    ratio_asked: float
    items: int
    answer_kept: float
    ratio_reached: float
    within_10pct: float
    ms_per_1k_tokens: float
    protected_kept: float
    whole_source: float = 0.0
    """Share of items sent as one source whole (`compression.whole_source_tokens`), not cut to the ratio."""


def _rows(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not valid JSON ({exc.msg})") from None


def load_items(path: Path, fmt: str, limit: int | None = None) -> list[tuple[str, str, list[str]]]:
    """(question, context, strings to find) per item."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError(f"question file {str(path)!r} does not exist")
    items: list[tuple[str, str, list[str]]] = []
    for row in _rows(path):
        try:
            if fmt == "hotpotqa":
                golds = [s for obj in row["answers_objects"] for s in obj.get("spans", [])]  # type: ignore[attr-defined]
                if not golds or is_yes_no(golds):
                    continue
                text = "\n\n".join(f"{c['title']}\n{c['paragraph_text']}" for c in row["contexts"])  # type: ignore[attr-defined]
                items.append((str(row["question_text"]), text, golds))
            elif fmt == "nq":
                text = "\n\n".join(f"{c['title']}\n{c['text']}" for c in row["ctxs"])  # type: ignore[attr-defined]
                items.append((str(row["question"]), text, [str(a) for a in row["answers"]]))  # type: ignore[attr-defined]
            else:
                body = ",\n ".join(f'"{k}": "{v}"' for k, v in row["ordered_kv_records"])  # type: ignore[attr-defined]
                q = f'Extract the value corresponding to the specified key in the JSON object. Key: "{row["key"]}"'
                items.append((q, "JSON data:\n{" + body + "}", [f'"{row["key"]}": "{row["value"]}"']))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: a line does not match the {fmt!r} format (missing {exc})") from None
        if limit and len(items) >= limit:
            break
    if not items:
        raise InputError(f"{path}: no usable items for format {fmt!r}")
    return items


def evaluate_compression(
    compressor: Compressor, path: Path, fmt: str, ratio: float, *, limit: int | None = None
) -> CompressionReport:
    """Compress every item's context at `ratio` and measure what was kept."""
    items = load_items(path, fmt, limit)
    kept = within = whole = 0
    reached: list[float] = []
    ms: list[float] = []
    protected: list[float] = []
    for question, text, golds in items:
        c = compressor.compress(question, text, CompressionTarget(ratio=ratio))
        kept += (all(g in c.text for g in golds)) if fmt == "kv" else answer_in_text(golds, c.text)
        within += 0.9 * c.target_tokens <= c.tokens <= 1.1 * c.target_tokens
        whole += c.whole_source
        reached.append(c.ratio)
        ms.append(1e6 * c.seconds / max(c.original_tokens, 1))
        protected.append(c.protected_kept / c.protected_total if c.protected_total else 1.0)
    n = len(items)
    return CompressionReport(
        format=fmt,
        method=compressor.name,
        ratio_asked=ratio,
        items=n,
        answer_kept=kept / n,
        ratio_reached=statistics.mean(reached),
        within_10pct=within / n,
        ms_per_1k_tokens=statistics.median(ms),
        protected_kept=statistics.mean(protected),
        whole_source=whole / n,
    )
