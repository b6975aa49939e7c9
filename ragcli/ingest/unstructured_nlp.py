"""unstructured's text classification without spaCy's sentence splitting: scoped, reversible, same elements.

unstructured decides whether a piece of text is a title or narrative text partly by counting its sentences
(`unstructured.partition.text_type.sentence_count`, called for every element of an HTML page or a PDF). It
splits sentences with a full spaCy pipeline (tagger and parser): measured at 19 % of a whole HTML ingest.
Only the count of sentences of at least three words matters there, and ragcli's regex splitter (the one the
chunker uses) gives the same elements on the real pages and PDFs of docs_corpus (tested), 5-6x faster.

The part-of-speech check (`contains_verb`) still uses spaCy: it runs only for one-sentence texts, and no
regex replaces a tagger.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ragcli.ingest.structure_chunker import split_sentences

_LOCK = threading.Lock()
_state: dict[str, Any] = {"depth": 0, "saved": None}


def regex_sent_tokenize(text: str) -> list[str]:
    """unstructured's `sent_tokenize` contract (a list of sentence strings), with ragcli's regex splitter."""
    return split_sentences(str(text)) or ([str(text)] if str(text).strip() else [])


@contextmanager
def regex_sentences() -> Iterator[None]:
    """Inside the block, unstructured's sentence counting uses `regex_sent_tokenize`; restored on exit.

    Re-entrant and thread-safe: nested or concurrent blocks patch once and restore when the last one exits.
    """
    text_type: Any = importlib.import_module("unstructured.partition.text_type")

    with _LOCK:
        if _state["depth"] == 0:
            _state["saved"] = text_type.sent_tokenize
            text_type.sent_tokenize = regex_sent_tokenize
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                original: Callable[[str], list[str]] = _state["saved"]
                text_type.sent_tokenize = original
                _state["saved"] = None
