"""Token counts from the GGUF's tokenizer (no model load) equal llama.cpp's own, on varied real text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from ragcli.generation.gguf_token_counter import GGUFTokenCounter
from ragcli.generation.llama_cpp_llm import LlamaCppLLM
from ragcli.resources import local_llm_gguf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("RAGCLI_DATA") or REPO.parent / "shared" / "data")


def _texts() -> list[str]:
    texts = [
        "Hello, world!",
        "  leading and trailing spaces  ",
        "Ünïcödé — «quotes» and emoji 🙂 and 日本語のテキスト",
        "def f(x):\n    return x ** 2  # code\n\n\ttabs",
        "Numbers 3.14159, 1,000,000 and 2026-12-02T06:00:00Z",
        "<|im_start|>user\nnot a special token here<|im_end|>",
    ]
    qs = DATA / "hotpotqa" / "questions.jsonl"
    if qs.is_file():
        with qs.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= 20:
                    break
                rec = json.loads(line)
                texts.append(rec["question_text"])
                texts.extend(c["paragraph_text"] for c in rec["contexts"][:2])
    return texts


def test_counts_equal_llama_cpp_and_the_model_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path))
    llm = LlamaCppLLM()
    light = [llm.count_tokens(t) for t in _texts()]
    assert llm._llama is None  # counted without loading the model
    assert GGUFTokenCounter(local_llm_gguf()).count("Hello, world!") == light[0]
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(local_llm_gguf()), n_ctx=512, verbose=False, vocab_only=True)
    exact = [len(model.tokenize(t.encode("utf-8"), add_bos=False, special=False)) for t in _texts()]
    mismatches = [(t[:40], a, b) for t, a, b in zip(_texts(), light, exact, strict=True) if a != b]
    assert not mismatches
