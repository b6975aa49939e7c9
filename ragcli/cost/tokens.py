"""Token counting with the target model's tokenizer, and a flag when a count is only an estimate.

OpenAI models are counted exactly with tiktoken (offline, from packaged encoding files). Other API models
(Anthropic, DeepSeek, Qwen, Gemini, ...) are counted with `cl100k_base` and flagged as estimates: their tokenizers
are not public or not packaged. Local models count with their own tokenizer (see the LLM adapters).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger(__name__)

_O200K_PREFIXES = ("gpt-5", "gpt-4.1", "gpt-4o", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a text; `estimate` says the count is not the model's own tokenizer's."""

    name: str
    count: Callable[[str], int]
    estimate: bool

    def __call__(self, text: str) -> int:
        return self.count(text)


def openai_encoding_name(model: str) -> str | None:
    """tiktoken's encoding for an OpenAI model name, or `None` when the model is not OpenAI's."""
    base = model.lower().rsplit("/", 1)[-1]
    if base.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if base.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return None


@lru_cache(maxsize=4)
def _encoding(name: str) -> Callable[[str], int] | None:
    try:
        import tiktoken

        from ragcli.resources import prepare_tiktoken

        prepare_tiktoken()
        enc = tiktoken.get_encoding(name)
    except Exception as exc:  # missing files, or tiktoken not installed: fall back to an estimate
        log.warning("tiktoken encoding %s is not available (%s); token counts are estimates", name, exc)
        return None

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    return count


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about 4 characters per token for English, at least one per word."""
    if not text:
        return 0
    return max(len(_WORDS.findall(text)), (len(text) + 3) // 4)


def whitespace_tokens(text: str) -> int:
    """Whitespace-separated words: the scripted fake LLM's 'tokenizer'."""
    return len(text.split())


def counter_for(model: str) -> TokenCounter:
    """The best counter available offline for an API model."""
    name = openai_encoding_name(model)
    if name is not None:
        enc = _encoding(name)
        if enc is not None:
            return TokenCounter(name, enc, estimate=False)
    fallback = _encoding("cl100k_base")
    if fallback is not None:
        return TokenCounter("cl100k_base", fallback, estimate=True)
    return TokenCounter("chars/4", estimate_tokens, estimate=True)
