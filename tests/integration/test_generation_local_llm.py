"""The real SmolLM2-135M-Instruct through llama-cpp-python: answers, streams, counts its own tokens, costs $0."""

from __future__ import annotations

import importlib.util

import pytest

from ragcli.errors import BudgetExceeded, ResourceMissing
from ragcli.generation.token_budget_packer import TokenBudgetPacker
from ragcli.resources import local_llm_gguf
from ragcli.types import Chunk, Completion, Hit, Message

pytestmark = pytest.mark.integration

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama-cpp-python is not installed", allow_module_level=True)
try:
    local_llm_gguf()
except ResourceMissing as exc:
    pytest.skip(str(exc), allow_module_level=True)

from ragcli.generation.llama_cpp_llm import LlamaCppLLM  # noqa: E402

MESSAGES = [
    Message("system", "Answer using only the numbered sources. Cite them as [1]."),
    Message(
        "user",
        "Sources:\n[1] geo.md\nParis is the capital of France.\n\nQuestion: What is the capital of France?",
    ),
]


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    return LlamaCppLLM(context_window=1024)


def test_answers_a_short_prompt_with_real_token_counts(llm: LlamaCppLLM) -> None:
    c = llm.complete(MESSAGES, max_tokens=24)
    assert "paris" in c.text.lower()
    assert c.usage.input_tokens == llm.prompt_tokens(MESSAGES) > 20
    assert 0 < c.usage.output_tokens <= 24 and c.usage.usd == 0.0 and c.usage.calls == 1
    assert c.model == "smollm2-135m-instruct" and not llm.token_count_is_estimate


def test_streams_pieces_then_a_completion(llm: LlamaCppLLM) -> None:
    out = list(llm.stream(MESSAGES, max_tokens=16))
    final = out[-1]
    assert isinstance(final, Completion) and len(out) > 2
    assert "".join(p for p in out[:-1] if isinstance(p, str)) == final.text
    assert final.usage.input_tokens == llm.prompt_tokens(MESSAGES) and final.usage.output_tokens > 0


def test_counts_tokens_with_its_own_tokenizer(llm: LlamaCppLLM) -> None:
    assert llm.count_tokens("") == 0
    n = llm.count_tokens("The quick brown fox jumps over the lazy dog.")
    assert 8 <= n <= 14


def test_packer_with_the_real_tokenizer_stays_in_budget(llm: LlamaCppLLM) -> None:
    hits = [
        Hit(
            Chunk(
                id=f"c{i}",
                doc_id="d",
                text=f"Fact number {i} is about the city of Paris. " * 6,
                source="f.md",
            ),
            1 / (i + 1),
        )
        for i in range(6)
    ]
    for budget in (40, 120, 300):
        ctx = TokenBudgetPacker(llm.count_tokens, select_sentences=budget == 120).pack(
            "Paris city", hits, budget
        )
        assert 0 < ctx.tokens <= budget and ctx.tokens == llm.count_tokens(ctx.text)


def test_prompt_too_long_for_the_window_is_refused_before_generating() -> None:
    small = LlamaCppLLM(context_window=256)
    long = [Message("user", "word " * 400)]
    with pytest.raises(BudgetExceeded, match="256-token window"):
        small.complete(long, max_tokens=16)


def test_slight_overflow_caps_the_answer_instead_of_failing(caplog: pytest.LogCaptureFixture) -> None:
    small = LlamaCppLLM(context_window=256)
    words = "Paris is the capital of France and a large city. " * 16
    msgs = [Message("user", words + "What is the capital of France?")]
    prompt = small.prompt_tokens(msgs)
    assert 256 - 64 < prompt < 256 - 16  # room for some answer, less than the 64 asked for
    with caplog.at_level("WARNING"):
        c = small.complete(msgs, max_tokens=64)
    assert c.usage.output_tokens <= 256 - prompt and "capped" in caplog.text
