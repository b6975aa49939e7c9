"""The roles of the generation stage. Start here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ragcli.generation.compression_types import Compressed, CompressionTarget
from ragcli.types import Completion, Context, Hit, Message


class LLM(Protocol):
    """A chat model. `complete` returns the text with its usage and dollars."""

    @property
    def model_name(self) -> str: ...

    @property
    def context_window(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens with this model's own tokenizer (or an estimate, see `token_count_is_estimate`)."""
        ...

    @property
    def token_count_is_estimate(self) -> bool: ...

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion: ...

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        """Yields text pieces, then one final `Completion` with the usage."""
        ...


class Packer(Protocol):
    """Fits hits into a token budget and numbers them for citation."""

    def pack(self, question: str, hits: Sequence[Hit], budget: int) -> Context: ...


class Compressor(Protocol):
    """Shortens a prompt part (context, system prompt, demonstrations) to a target, keeping what the question needs."""

    @property
    def name(self) -> str: ...

    def compress(self, question: str, text: str, target: CompressionTarget) -> Compressed: ...
