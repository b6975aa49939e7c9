"""The roles of the generation stage. Start here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ragcli.generation.compression_types import Compressed, CompressionTarget
from ragcli.types import Completion, Context, Hit, Message, Usage


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

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        """The most a call can cost, before it is made (every prompt token uncached, every output token used).

        `usd=None` when the model's price is unknown; the query's budget then refuses the call if a limit is set.
        """
        ...

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
