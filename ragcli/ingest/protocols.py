"""The roles of the ingest stage. Start here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ragcli.types import Chunk, Document, Usage, Vectors


class Parser(Protocol):
    """Turns one file into a `Document`; raises `InputError` with a reason a person can act on."""

    def parse(self, path: Path) -> Document: ...


class Chunker(Protocol):
    """Splits a document into chunks that follow its structure and never exceed a token maximum."""

    def chunk(self, document: Document) -> list[Chunk]: ...


class TokenCounter(Protocol):
    """Counts tokens with one model's own tokenizer."""

    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class Embeddings:
    vectors: Vectors
    usage: Usage


class Embedder(Protocol):
    """Turns texts into L2-normalised dense vectors."""

    @property
    def model_name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The longest input (in the model's own tokens) the model reads without truncating."""
        ...

    @property
    def tokenizer(self) -> TokenCounter: ...

    def embed(self, texts: Sequence[str]) -> Embeddings: ...

    def embed_query(self, text: str) -> Embeddings: ...
