"""Answer normalisation and matching as SQuAD's official evaluation script does it.

`normalize_answer` lowercases, strips ASCII punctuation and the articles a/an/the, and collapses whitespace.
`answer_in_text` asks whether any normalised gold answer occurs in a normalised text as whole words (a gold `no`
does not match inside `not`). `exact_match` and `f1` are SQuAD's answer scores, maximised over the gold answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
YES_NO = frozenset({"yes", "no"})


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, drop articles, collapse whitespace (SQuAD v1.1 `normalize_answer`)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalized_golds(golds: Iterable[str]) -> list[str]:
    """The non-empty normalised forms of the gold answers, without duplicates, in order."""
    seen: dict[str, None] = {}
    for gold in golds:
        norm = normalize_answer(gold)
        if norm:
            seen.setdefault(norm, None)
    return list(seen)


def is_yes_no(golds: Sequence[str]) -> bool:
    """True when every gold answer is `yes` or `no` (HotpotQA comparison questions): no span to look for."""
    norms = normalized_golds(golds)
    return bool(norms) and all(g in YES_NO for g in norms)


def answer_in_normalized(golds: Sequence[str], normalized_text: str) -> bool:
    """`answer_in_text` for a text that is already normalised (normalise a long prompt once, test many golds)."""
    padded = f" {normalized_text} "
    return any(f" {g} " in padded for g in normalized_golds(golds))


def answer_in_text(golds: Sequence[str], text: str) -> bool:
    """True when any normalised gold answer occurs in the normalised text as whole words."""
    return answer_in_normalized(golds, normalize_answer(text))


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def _f1_one(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    # SQuAD's rule: an empty answer only matches an empty gold
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 of the prediction, the best over the gold answers."""
    return max((_f1_one(prediction, g) for g in golds), default=0.0)
