"""The stage objects of one pipeline, built from a config on first use.

`Stages` is what the pipelines take. Build it from YAML with `Stages.from_config(load_config("local"))`, or hand
it stage objects directly (a library user's own embedder, a fake LLM in a test): any stage given is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.config import PipelineConfig
from ragcli.retrieval.filters import Filter

if TYPE_CHECKING:
    from ragcli.cost.ledger import Ledger
    from ragcli.cost.prices import PriceTable
    from ragcli.generation.protocols import LLM, Packer
    from ragcli.ingest.protocols import Chunker, Embedder, Parser
    from ragcli.retrieval.protocols import Reranker, SparseEncoder, VectorStore


@dataclass
class Stages:
    """Lazily built stages. Heavy models load only when a pipeline first touches them."""

    config: PipelineConfig = field(default_factory=PipelineConfig)
    overrides: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: PipelineConfig, **stages: object) -> Stages:
        return cls(config=config, overrides=dict(stages))

    def _given(self, name: str) -> object | None:
        return self.overrides.get(name)

    @property
    def home(self) -> Path:
        return self.config.home_dir()

    @cached_property
    def parser(self) -> Parser:
        from ragcli.ingest.build import build_parser

        return self._given("parser") or build_parser(self.config)  # type: ignore[return-value]

    @cached_property
    def embedder(self) -> Embedder:
        from ragcli.ingest.build import build_embedder

        return self._given("embedder") or build_embedder(self.config.embedder)  # type: ignore[return-value]

    @cached_property
    def chunker(self) -> Chunker:
        from ragcli.ingest.build import build_chunker

        return self._given("chunker") or build_chunker(self.config, self.embedder)  # type: ignore[return-value]

    @cached_property
    def store(self) -> VectorStore:
        from ragcli.retrieval.build import build_store

        return self._given("store") or build_store(self.config)  # type: ignore[return-value]

    @cached_property
    def sparse_encoder(self) -> SparseEncoder | None:
        from ragcli.retrieval.build import build_sparse_encoder

        given = self._given("sparse_encoder")
        return given or build_sparse_encoder(self.config)  # type: ignore[return-value]

    @cached_property
    def reranker(self) -> Reranker | None:
        from ragcli.retrieval.build import build_reranker

        given = self._given("reranker")
        return given or build_reranker(self.config)  # type: ignore[return-value]

    @cached_property
    def tenant_filter(self) -> Filter | None:
        from ragcli.retrieval.filter_parser import parse_where

        given = self._given("tenant_filter")
        if given is not None:
            return given  # type: ignore[return-value]
        tenant = self.config.retrieval.tenant
        return parse_where(tenant, self.config.filterable) if tenant else None

    @cached_property
    def llm(self) -> LLM:
        from ragcli.generation.build import build_llm

        return self._given("llm") or build_llm(self.config, self.prices)  # type: ignore[return-value]

    @cached_property
    def packer(self) -> Packer:
        from ragcli.generation.build import build_packer

        return self._given("packer") or build_packer(self.config, self.llm)  # type: ignore[return-value]

    @cached_property
    def prices(self) -> PriceTable:
        from ragcli.cost.prices import PriceTable

        given = self._given("prices")
        return given or PriceTable.load(self.config.cost)  # type: ignore[return-value]

    @cached_property
    def ledger(self) -> Ledger:
        from ragcli.cost.ledger import Ledger

        given = self._given("ledger")
        if given is not None:
            return given  # type: ignore[return-value]
        path = (
            Path(self.config.cost.ledger).expanduser()
            if self.config.cost.ledger
            else self.home / "ledger.sqlite"
        )
        return Ledger(path)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "ledger" in self.__dict__:
            self.ledger.close()
