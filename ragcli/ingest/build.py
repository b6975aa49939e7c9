"""Config sections -> ingest stage objects (parser, embedder, chunker). Heavy imports stay in the adapters."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.config import (
    EmbedderConfig,
    HashEmbedderConfig,
    OpenAIEmbedderConfig,
    PipelineConfig,
    SentenceTransformersEmbedderConfig,
)
from ragcli.errors import ConfigError
from ragcli.ingest.chunking_profiles import PROFILES, resolve_limits
from ragcli.ingest.protocols import Chunker, Embedder, Parser
from ragcli.ingest.structure_chunker import StructureChunker


def build_parser(cfg: PipelineConfig) -> Parser:
    """unstructured when installed; otherwise the light reader for text, Markdown, CSV, JSON and code."""
    if importlib.util.find_spec("unstructured") is not None:
        from ragcli.ingest.unstructured_parser import UnstructuredParser

        p = cfg.ingest.parser
        return UnstructuredParser(
            pdf_strategy=p.pdf_strategy,
            html_main_content=p.html_main_content,
            markdown_reader=p.markdown_reader,
            text_reader=p.text_reader,
        )
    from ragcli.ingest.plain_text_parser import PlainTextParser

    return PlainTextParser()


if TYPE_CHECKING:
    from ragcli.cost.prices import PriceTable


def build_embedder(
    cfg: EmbedderConfig, *, home: Path | None = None, prices: PriceTable | None = None
) -> Embedder:
    """The configured embedder; `home` is where `trained:NAME` models live (default `$RAGCLI_HOME`).

    `prices` prices a paid embedder's calls (the config's `cost.prices` included); default: the shipped sources.
    """
    if isinstance(cfg, SentenceTransformersEmbedderConfig):
        from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            cfg.model, batch_size=cfg.batch_size, device=cfg.device, backend=cfg.backend, home=home
        )
    if isinstance(cfg, HashEmbedderConfig):
        from ragcli.ingest.hash_embedder import HashEmbedder

        return HashEmbedder(cfg.dim)
    if isinstance(cfg, OpenAIEmbedderConfig):
        from ragcli.ingest.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(
            cfg.model,
            base_url=cfg.base_url,
            api_key_env=cfg.api_key_env,
            dim=cfg.dim,
            batch_size=cfg.batch_size,
            prices=prices,
        )
    raise ConfigError(f"unknown embedder config {type(cfg).__name__}")  # pragma: no cover - closed union


def build_chunker(cfg: PipelineConfig, embedder: Embedder) -> Chunker:
    """The structure chunker, its limits per profile capped at the embedder's max sequence length."""
    ch = cfg.ingest.chunking
    overrides = {name: p.model_dump() for name, p in ch.profiles.items()}
    unknown = sorted(set(overrides) - set(PROFILES))
    if unknown:
        raise ConfigError(
            f"ingest.chunking.profiles: unknown profile(s) {unknown}; use {', '.join(PROFILES)}"
        )
    # A global min_tokens the user did not set lets each profile keep its own minimum.
    min_tokens = ch.min_tokens if "min_tokens" in ch.model_fields_set else None
    limits = {
        name: resolve_limits(
            name,
            max_tokens=ch.max_tokens,
            min_tokens=min_tokens,
            overlap_tokens=ch.overlap_tokens,
            overrides=overrides,
            model_max_tokens=embedder.max_tokens,
        )
        for name in PROFILES
    }
    return StructureChunker(
        embedder.tokenizer, limits, profile=ch.profile, breadcrumb_in_embedding=ch.breadcrumb_in_embedding
    )
