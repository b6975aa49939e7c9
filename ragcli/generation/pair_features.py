"""Cheap lexical features of a question pair that sentence embeddings miss: negation, numbers, names, wh-words.

Two questions that differ only in "not", a year or a product name sit close in embedding space ("how do I
delete a branch" / "... a repo" at cosine 0.85), yet a cache must not serve one for the other. These features
let the verifier's head see such differences directly. Pure Python, no model: they cost microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragcli.errors import InputError

FEATURE_NAMES = (
    "negation_mismatch",
    "numbers_differ",
    "numbers_one_side",
    "names_jaccard",
    "names_unshared",
    "length_ratio",
    "token_jaccard",
    "content_jaccard",
    "content_unshared",
    "wh_mismatch",
    "same_text",
)
"""The order of the values `pair_features` returns."""

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION_WORDS = (
    "not no never none nobody nothing neither nor cannot without isn't aren't wasn't weren't don't doesn't "
    "didn't can't couldn't won't wouldn't shouldn't hasn't haven't hadn't mustn't"
)
_NEGATIONS = frozenset(_NEGATION_WORDS.split())
_WH = ("what", "why", "how", "when", "where", "who", "whom", "whose", "which")
_STOP_WORDS = (
    "a an the of to in on for and or is are was were be been being do does did i you he she it we they my your "
    "me his her its our their this that these those there here with at by from as into about can could should "
    "would will shall may might must what why how when where who whom whose which if than then so some any "
    "get have has had am"
)
_STOP = frozenset(_STOP_WORDS.split())
_SPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """A question's exact-match form: lowercase, punctuation dropped, spaces collapsed."""
    lowered = text.lower().replace("’", "'")
    kept = re.sub(r"[^\w\s']", " ", lowered)
    return _SPACE.sub(" ", kept).strip()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.replace("’", "'"))


def _names(tokens: Sequence[str]) -> set[str]:
    """Capitalised words after the first one, and acronyms: a cheap stand-in for named entities."""
    out = set()
    for i, tok in enumerate(tokens):
        if tok[0].isupper() and (i > 0 or (len(tok) > 1 and tok.isupper())) and tok.lower() not in _STOP:
            out.add(tok.lower())
    return out


def _wh(tokens: Sequence[str]) -> str:
    for tok in tokens[:6]:
        low = tok.lower()
        if low in _WH:
            return low
    return ""


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _negated(tokens: Sequence[str]) -> bool:
    """Odd count of negations: "not un-..." double negatives are rare in questions, parity is enough."""
    return sum(1 for t in tokens if t.lower() in _NEGATIONS or t.lower().endswith("n't")) % 2 == 1


def pair_features(a: str, b: str) -> list[float]:
    """The features of one pair, in `FEATURE_NAMES` order; symmetric in `a` and `b`."""
    ta, tb = _tokens(a), _tokens(b)
    la, lb = [t.lower() for t in ta], [t.lower() for t in tb]
    nums_a, nums_b = set(_NUMBER.findall(a)), set(_NUMBER.findall(b))
    names_a, names_b = _names(ta), _names(tb)
    content_a = {t for t in la if t not in _STOP}
    content_b = {t for t in lb if t not in _STOP}
    wh_a, wh_b = _wh(ta), _wh(tb)
    longest = max(len(la), len(lb), 1)
    return [
        float(_negated(ta) != _negated(tb)),
        float(bool(nums_a or nums_b) and nums_a != nums_b),
        float(bool(nums_a) != bool(nums_b)),
        _jaccard(names_a, names_b),
        min(len(names_a ^ names_b), 4) / 4.0,
        min(len(la), len(lb)) / longest,
        _jaccard(set(la), set(lb)),
        _jaccard(content_a, content_b),
        min(len(content_a ^ content_b), 10) / 10.0,
        float(bool(wh_a and wh_b) and wh_a != wh_b),
        float(normalise_question(a) == normalise_question(b)),
    ]


def pair_feature_matrix(a: Sequence[str], b: Sequence[str]) -> list[list[float]]:
    """`pair_features` for each `(a[i], b[i])`."""
    if len(a) != len(b):
        raise InputError(f"pair_feature_matrix got {len(a)} first texts but {len(b)} second texts")
    return [pair_features(x, y) for x, y in zip(a, b, strict=True)]
