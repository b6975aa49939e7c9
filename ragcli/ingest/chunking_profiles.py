"""Chunking profiles per content type: the limits a document's chunks follow, chosen from its type."""

from __future__ import annotations

from dataclasses import dataclass

from ragcli.errors import ConfigError

PROFILES = ("prose", "markdown", "pdf", "html", "code", "table")


@dataclass(frozen=True)
class ChunkLimits:
    """The token limits of one profile (in the embedding model's tokens, special tokens included)."""

    max_tokens: int = 256
    min_tokens: int = 48
    overlap_tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ConfigError(f"chunk max_tokens must be at least 16, got {self.max_tokens}")
        if not 0 <= self.min_tokens <= self.max_tokens:
            raise ConfigError(
                f"chunk min_tokens must be between 0 and max_tokens ({self.max_tokens}), "
                f"got {self.min_tokens}"
            )
        if not 0 <= self.overlap_tokens <= self.max_tokens // 2:
            raise ConfigError(
                f"chunk overlap_tokens must be between 0 and half of max_tokens "
                f"({self.max_tokens // 2}), got {self.overlap_tokens}"
            )


# Why these differ: Markdown docs have many short, meaningful sections (keep them apart: a low minimum);
# PDFs and plain prose lose their structure in extraction and produce tiny false "titles" (merge more);
# code and tables are never merged across blocks for size alone.
BUILTIN_MIN_TOKENS = {"prose": 64, "markdown": 32, "pdf": 64, "html": 48, "code": 0, "table": 0}


def resolve_limits(
    profile: str,
    *,
    max_tokens: int,
    min_tokens: int | None,
    overlap_tokens: int,
    overrides: dict[str, dict[str, int | None]] | None = None,
    model_max_tokens: int | None = None,
) -> ChunkLimits:
    """The limits of one profile: global values, then the built-in profile's minimum, then the user's override.

    Args:
        profile: One of `PROFILES`.
        max_tokens: The global hard maximum.
        min_tokens: The global minimum, or None to use the built-in one of the profile.
        overlap_tokens: The global overlap.
        overrides: Per profile, the user's `max_tokens`/`min_tokens`/`overlap_tokens` (None = not set).
        model_max_tokens: The embedding model's max sequence length: no profile may exceed it.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown chunking profile {profile!r}; use one of {', '.join(PROFILES)}")
    mx = max_tokens
    mn = BUILTIN_MIN_TOKENS[profile] if min_tokens is None else min_tokens
    ov = overlap_tokens
    over = (overrides or {}).get(profile, {})
    if over.get("max_tokens") is not None:
        mx = int(over["max_tokens"] or mx)
    if over.get("min_tokens") is not None:
        mn = int(over["min_tokens"] or 0)
    if over.get("overlap_tokens") is not None:
        ov = int(over["overlap_tokens"] or 0)
    if model_max_tokens is not None:
        mx = min(mx, model_max_tokens)
    mn = min(mn, mx // 2)
    return ChunkLimits(max_tokens=mx, min_tokens=mn, overlap_tokens=min(ov, mx // 2))
