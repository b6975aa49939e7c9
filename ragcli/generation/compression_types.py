"""The data of the compression stage: what to reach (`CompressionTarget`) and what came out (`Compressed`).

Every compressor (`ragcli.generation.protocols.Compressor`) takes the first and returns the second, so a
benchmark or a trace reads the same facts from any back-end: tokens before and after, the ratio reached, time,
and how many protected spans (numbers, dates, codes, citations, the question's names) survived whole.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompressionTarget:
    """How far to compress a prompt part: a `ratio` (original / compressed tokens) or a hard `tokens` cap.

    A ratio is met within 10 %; `tokens` is never exceeded. Given both, the smaller budget wins.
    """

    ratio: float | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.tokens is None:
            raise ValueError("a compression target needs a ratio (e.g. 3.0) or a token count")
        if self.ratio is not None and self.ratio < 1.0:
            raise ValueError(f"ratio must be >= 1 (original / compressed tokens), got {self.ratio}")
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"tokens must be >= 1, got {self.tokens}")

    def budget(self, original_tokens: int) -> int:
        """The most tokens the compressed text may have."""
        caps = [original_tokens]
        if self.ratio is not None:
            caps.append(int(original_tokens / self.ratio))
        if self.tokens is not None:
            caps.append(self.tokens)
        return max(0, min(caps))


@dataclass(frozen=True)
class Compressed:
    """A compressed prompt part and what compression did to it."""

    text: str
    original_tokens: int
    tokens: int
    target_tokens: int
    seconds: float = 0.0
    method: str = ""
    units_total: int = 0
    units_kept: int = 0
    words_pruned: int = 0
    protected_total: int = 0
    """Protected spans (numbers, dates, codes, citations, the question's names) in the original."""
    protected_kept: int = 0
    """Of those, how many occur whole in the compressed text."""
    whole_source: bool = False
    """The output is one source sent whole (`SentenceCompressor(whole_source_tokens=...)`), not cut to target."""
    closest_units: int = 0
    """With `whole_source`: the clauses of the source closest to the question by embedding sent with it (0 when
    that is the source sent whole, or no similarity was given)."""

    @property
    def ratio(self) -> float:
        """Original tokens over compressed tokens (1.0 when nothing was removed)."""
        return self.original_tokens / max(self.tokens, 1)
