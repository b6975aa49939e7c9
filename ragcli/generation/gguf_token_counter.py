"""Counts a GGUF model's tokens with the `tokenizers` library alone: no llama.cpp load, no torch.

The tokenizer is read out of the GGUF file once (through transformers' GGUF converter) and cached as a
`tokenizer.json` under `<home>/tokenizers/`, keyed by the file's size and modification time; later runs load
that JSON in milliseconds. `ragcli query --no-answer` and context budgeting need only this, not the model.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from ragcli.errors import ResourceMissing
from ragcli.resources import cache_dir

log = logging.getLogger(__name__)


def tokenizer_json(gguf: Path) -> Path:
    """The cached `tokenizer.json` of a GGUF file, converted on first use (a few seconds, once)."""
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir("tokenizers") / f"{gguf.stem}-{key}.json"
    if target.is_file():
        return target
    t0 = time.perf_counter()
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:
        raise ResourceMissing(
            f"reading the tokenizer of {gguf.name} needs transformers and gguf ({exc}); "
            "run `pip install 'ragcli[local]'`"
        ) from exc
    tmp = target.with_suffix(".tmp")
    tok.backend_tokenizer.save(str(tmp))
    tmp.replace(target)  # atomic: a concurrent process sees the whole file or none
    log.info("cached the tokenizer of %s in %s (%.1fs)", gguf.name, target, time.perf_counter() - t0)
    return target


class GGUFTokenCounter:
    """Counts tokens as llama.cpp's `tokenize(text, add_bos=False, special=False)` does, without the model.

    Args:
        gguf: The model file.
    """

    def __init__(self, gguf: Path) -> None:
        if not gguf.is_file():
            raise ResourceMissing(f"GGUF file {str(gguf)!r} not found; give the path of a .gguf model file")
        from tokenizers import Tokenizer

        self._tok: Any = Tokenizer.from_file(str(tokenizer_json(gguf)))
        self._tok.no_truncation()
        self._tok.no_padding()
        # llama.cpp's `special=False`: a special token's text inside a document is plain text, not the token
        if hasattr(self._tok, "encode_special_tokens"):
            self._tok.encode_special_tokens = True

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)
