"""Plain data that flows between stages. No behaviour beyond small derived properties."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Scalar = str | int | float | bool
"""A metadata value: what a payload field and a filter can hold (lists of these are allowed too)."""
MetaValue = Scalar | list[str] | list[int] | list[float]
Metadata = dict[str, MetaValue]
Vectors = npt.NDArray[np.float32]
"""Dense vectors, one row per text, L2-normalised by the embedder."""

ElementKind = Literal["title", "narrative", "list", "table", "code", "other"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Usage:
    """Tokens and dollars of one or more model calls. `usd=None` means the price is unknown, never zero."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usd: float | None = 0.0
    calls: int = 0
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (Anthropic `cache_creation_input_tokens`), any TTL."""
    cache_write_1h_tokens: int = 0
    """The part of `cache_write_tokens` written with the 1-hour TTL (priced higher than the 5-minute one)."""
    reasoning_tokens: int = 0
    """The part of `output_tokens` the model spent reasoning (billed as output; shown, never added twice)."""
    batch: bool = False
    """Billed through a provider's batch API (half price at most providers)."""

    # Conventions (the price table relies on them): `input_tokens` counts every prompt token, cached reads
    # (`cached_tokens`) and cache writes included, as OpenAI's `prompt_tokens` does; `output_tokens` includes
    # `reasoning_tokens`, as OpenAI's `completion_tokens` does.

    def __add__(self, other: Usage) -> Usage:
        usd = None if self.usd is None or other.usd is None else self.usd + other.usd
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            usd=usd,
            calls=self.calls + other.calls,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            # a sum is "batch" only when every call in it was (an empty usage does not count)
            batch=(self.batch or not self.calls)
            and (other.batch or not other.calls)
            and bool(self.calls + other.calls),
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Element:
    """One structural piece of a parsed document, in reading order."""

    text: str
    kind: ElementKind = "narrative"
    heading_level: int = 0
    """For titles: 1 for a top heading, 2 for its subsection, ...; 0 for everything else."""
    page: int | None = None


@dataclass
class Document:
    """A parsed source file: its elements in reading order and its metadata."""

    id: str
    source: str
    title: str
    elements: list[Element]
    content_type: str
    """The chunking profile this document gets: 'prose', 'markdown', 'pdf', 'html', 'code', 'table'."""
    metadata: Metadata = field(default_factory=dict)
    content_hash: str = ""


@dataclass(frozen=True)
class Chunk:
    """A unit of retrieval: a section or part of one, with where it came from."""

    id: str
    doc_id: str
    text: str
    source: str
    section_path: tuple[str, ...] = ()
    page: int | None = None
    ordinal: int = 0
    tokens: int = 0
    content_hash: str = ""
    metadata: Metadata = field(default_factory=dict)

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.section_path)


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Hit:
    """A chunk found for a query, with the score of the stage that ranked it last."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """A model's answer with its usage, who served it, and how many attempts it took."""

    text: str
    model: str
    usage: Usage
    latency_s: float = 0.0
    provider: str = ""
    """`openai`, `anthropic`, `local`, ... (shown in the ledger)."""
    attempts: int = 1
    """Tries it took, failed ones included (failed tries are logged, never billed)."""


@dataclass(frozen=True)
class Citation:
    """What a `[n]` marker in an answer points at."""

    number: int
    chunk_id: str
    source: str
    section: str = ""
    page: int | None = None


@dataclass(frozen=True)
class PackStats:
    """What packing saw: the cost of sending every candidate whole, and how many sentences it kept."""

    candidate_tokens: int = 0
    """Tokens of all candidate hits, whole, with headers: what packing everything would have cost."""
    sentences_total: int = 0
    sentences_kept: int = 0
    selection_used: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Context:
    """The evidence packed into a prompt, and what it costs."""

    text: str
    citations: list[Citation]
    tokens: int
    hits_used: int
    hits_dropped: int = 0
    truncated: bool = False
    stats: PackStats = field(default_factory=PackStats)


@dataclass(frozen=True)
class StageTrace:
    """What one stage did: time, cost and a few JSON-safe facts."""

    stage: str
    seconds: float
    usage: Usage = field(default_factory=Usage)
    detail: Mapping[str, Scalar | None] = field(default_factory=dict)


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    model: str
    usage: Usage
    trace: list[StageTrace]
    prompt: list[Message] = field(default_factory=list)
    prompt_tokens: dict[str, int] = field(default_factory=dict)
    """Tokens per prompt part: system, history, context, question, total."""
    token_count_estimated: bool = False
    query_id: str = ""
    warnings: list[str] = field(default_factory=list)
    """Stages that could not run as configured (e.g. a reranker that failed to load), said aloud."""


@dataclass
class FileResult:
    """The outcome of ingesting one file."""

    path: str
    status: Literal["ok", "failed", "unchanged", "empty", "skipped"]
    """`skipped`: left out of a folder walk (unsupported type, symlink loop, broken link), in `IngestReport.skipped`."""
    reason: str = ""
    chunks: int = 0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    chunks_added: int = 0
    chunks_replaced: int = 0
    chunks_removed: int = 0
    chunks_resumed: int = 0
    """Chunks found already written by an interrupted earlier run of the same file version (not embedded again)."""
    tokens_embedded: int = 0
    largest_chunk_tokens: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    skipped: list[FileResult] = field(default_factory=list)
    """What the folder walk left out, with why (nothing is skipped without a word)."""

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]
