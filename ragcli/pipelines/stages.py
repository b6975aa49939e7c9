"""The stage objects of one pipeline, built from a config on first use.

`Stages` is what the pipelines take. Build it from YAML with `Stages.from_config(load_config("local"))`, or hand
it stage objects directly by keyword (a library user's own embedder, a fake LLM in a test): any stage given is used
as is, and a misspelled stage name is an error. A `Stages` keeps no per-query state: one serves concurrent queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ragcli.config import OpenAIEmbedderConfig, PipelineConfig
from ragcli.retrieval.filters import Filter

if TYPE_CHECKING:
    from ragcli.cost.ledger import Ledger
    from ragcli.cost.prices import PriceTable
    from ragcli.cost.protocols import BudgetStore
    from ragcli.generation.answer_cache import AnswerCache
    from ragcli.generation.protocols import LLM, Compressor, Packer
    from ragcli.generation.route_log import RouteLog
    from ragcli.generation.tier_router import TierRouter
    from ragcli.ingest.protocols import Chunker, Embedder, Parser
    from ragcli.retrieval.fusion import LearnedFusion
    from ragcli.retrieval.protocols import Reranker, SparseEncoder, VectorStore
    from ragcli.retrieval.sentence_vectors import SentenceVectors
    from ragcli.state.build import State
    from ragcli.state.postgres_database import PostgresDatabase


@dataclass
class Stages:
    """Lazily built stages. Heavy models load only when a pipeline first touches them."""

    config: PipelineConfig = field(default_factory=PipelineConfig)
    given_parser: Parser | None = None
    given_embedder: Embedder | None = None
    given_chunker: Chunker | None = None
    given_store: VectorStore | None = None
    given_sparse_encoder: SparseEncoder | None = None
    given_fusion: LearnedFusion | None = None
    given_reranker: Reranker | None = None
    given_tenant_filter: Filter | None = None
    given_llm: LLM | None = None
    given_tiers: list[LLM] | None = None
    given_packer: Packer | None = None
    given_compressor: Compressor | None = None
    given_prices: PriceTable | None = None
    given_ledger: Ledger | None = None
    given_budget_store: BudgetStore | None = None
    given_answer_cache: AnswerCache | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig, **stages: Any) -> Stages:
        """Stages for a config; keyword arguments (`llm=`, `embedder=`, ...) replace the configured stage."""
        known = sorted(f.name.removeprefix("given_") for f in fields(cls) if f.name.startswith("given_"))
        unknown = sorted(set(stages) - set(known))
        if unknown:
            raise TypeError(f"unknown stage(s) {', '.join(unknown)}; stages are: {', '.join(known)}")
        return cls(config=config, **{f"given_{k}": v for k, v in stages.items()})

    @property
    def home(self) -> Path:
        return self.config.home_dir()

    @cached_property
    def parser(self) -> Parser:
        from ragcli.ingest.build import build_parser

        given = self.given_parser
        return given if given is not None else build_parser(self.config)

    @cached_property
    def embedder(self) -> Embedder:
        from ragcli.ingest.build import build_embedder

        given = self.given_embedder
        if given is not None:
            return given
        paid = isinstance(self.config.embedder, OpenAIEmbedderConfig)  # only a paid embedder needs the prices
        return build_embedder(self.config.embedder, home=self.home, prices=self.prices if paid else None)

    @cached_property
    def chunker(self) -> Chunker:
        from ragcli.ingest.build import build_chunker

        given = self.given_chunker
        return given if given is not None else build_chunker(self.config, self.embedder)

    @cached_property
    def store(self) -> VectorStore:
        from ragcli.retrieval.build import build_store

        given = self.given_store
        return given if given is not None else build_store(self.config)

    @cached_property
    def sparse_encoder(self) -> SparseEncoder | None:
        from ragcli.retrieval.build import build_sparse_encoder

        given = self.given_sparse_encoder
        return given if given is not None else build_sparse_encoder(self.config)

    @cached_property
    def fusion(self) -> LearnedFusion | None:
        from ragcli.retrieval.build import build_fusion

        given = self.given_fusion
        return given if given is not None else build_fusion(self.config)

    @cached_property
    def sentence_vectors(self) -> SentenceVectors:
        """The collection's chunks' sentence vectors, for a fusion that reads sentence features; kept in
        `<home>/sentence_vectors.sqlite` (by chunk text and embedding model)."""
        from ragcli.retrieval.build import build_sentence_vectors

        return build_sentence_vectors(self.config, self.embedder)

    @cached_property
    def reranker(self) -> Reranker | None:
        from ragcli.retrieval.build import build_reranker

        given = self.given_reranker
        return given if given is not None else build_reranker(self.config)

    @cached_property
    def tenant_filter(self) -> Filter | None:
        from ragcli.retrieval.filter_parser import parse_where

        given = self.given_tenant_filter
        if given is not None:
            return given
        tenant = self.config.retrieval.tenant
        return parse_where(tenant, self.config.filterable) if tenant else None

    @cached_property
    def llm(self) -> LLM:
        from ragcli.generation.build import build_llm

        given = self.given_llm
        if given is not None:
            return given
        if self.config.tiers or self.given_tiers is not None:
            return self.tiers[0]  # the cheapest tier prepares the prompt: its window bounds the packing
        return build_llm(self.config, self.prices)

    @cached_property
    def tiers(self) -> list[LLM]:
        """The model tiers, cheapest first: the config's `tiers`, else the one `llm`."""
        from ragcli.generation.build import build_llm

        if self.given_tiers is not None:
            return list(self.given_tiers)
        if not self.config.tiers:
            return [self.llm]
        return [build_llm(self.config.model_copy(update={"llm": t}), self.prices) for t in self.config.tiers]

    @cached_property
    def tier_router(self) -> TierRouter:
        """Rules, then the trained router (`router.model`), else the cheapest tier."""
        from ragcli.generation.tier_router import TierRouter

        names = [t.model_name for t in self.tiers]
        embedder = self.embedder if self.config.router.model and len(names) > 1 else None
        return TierRouter.from_config(self.config, names, self.home, embedder)

    @cached_property
    def route_log(self) -> RouteLog:
        """Which tier answered each query (for `ragcli feedback` labels), beside the ledger: in the PostgreSQL
        state when there is one, so that every host sees every answer's route, sources and verdicts."""
        from ragcli.cost.ledger import ledger_path
        from ragcli.generation.route_log import RouteLog

        if self.state_db is not None:
            from ragcli.state.postgres_route_log import PostgresRouteLog

            return PostgresRouteLog(self.state_db)
        return RouteLog(ledger_path(self.config))

    @cached_property
    def packer(self) -> Packer:
        from ragcli.generation.build import build_packer

        given = self.given_packer
        return given if given is not None else build_packer(self.config, self.llm)

    @cached_property
    def compressor(self) -> Compressor | None:
        """The `compression:` stage (`None` when the config turns it off)."""
        from ragcli.generation.build import build_compressor

        given = self.given_compressor
        if given is not None:
            return given
        return build_compressor(
            self.config,
            self.llm.count_tokens,
            lambda texts: self.embedder.embed(texts).vectors,
            # only a unit model reads it (building the embedder here would load its model for nothing)
            embedder_name=self.embedder.model_name
            if getattr(self.config.compression, "unit_model", None)
            else None,
        )

    @cached_property
    def prices(self) -> PriceTable:
        from ragcli.cost.prices import PriceTable

        given = self.given_prices
        return given if given is not None else PriceTable.load(self.config.cost)

    @cached_property
    def ledger(self) -> Ledger:
        from ragcli.cost.ledger import Ledger, ledger_path

        given = self.given_ledger
        if given is not None:
            return given
        if self.shared_state is not None:  # PostgreSQL: the same methods as the SQLite ledger
            return cast("Ledger", self.shared_state.ledger)
        return Ledger(ledger_path(self.config))

    @cached_property
    def budget_store(self) -> BudgetStore:
        """Where shared dollar limits are kept: the ledger's SQLite file unless another store is given."""
        from ragcli.cost.budget import SqliteBudgetStore
        from ragcli.cost.ledger import ledger_path

        given = self.given_budget_store
        if given is not None:
            return given
        if self.shared_state is not None:
            return self.shared_state.budgets
        return SqliteBudgetStore(ledger_path(self.config))

    @property
    def state_db(self) -> PostgresDatabase | None:
        """The PostgreSQL state's database when there is one: the route log and the cache's entries share its
        pool (opened once, closed with the `Stages`)."""
        return self.shared_state.db if self.shared_state is not None else None

    @cached_property
    def shared_state(self) -> State | None:
        """The PostgreSQL state (ledger, budgets, keys) when `state.dsn_env` is set; `None`: SQLite files."""
        from ragcli.state.build import open_state, state_dsn_env

        return open_state(self.config) if state_dsn_env(self.config) else None

    @cached_property
    def answer_cache(self) -> AnswerCache:
        """The answer cache (`cache:`): its own collection in the configured store, metadata in SQLite."""
        from ragcli.generation.cache_build import build_answer_cache

        given = self.given_answer_cache
        return (
            given if given is not None else build_answer_cache(self.config, self.embedder, db=self.state_db)
        )

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        shared = self.__dict__.get("shared_state")
        if shared is not None:  # it owns the ledger and budget store it handed out
            shared.close()
        else:
            if "ledger" in self.__dict__:
                self.ledger.close()
            if "budget_store" in self.__dict__:
                self.budget_store.close()
        if "answer_cache" in self.__dict__:
            self.answer_cache.close()
        if "route_log" in self.__dict__:
            self.route_log.close()
        if "sentence_vectors" in self.__dict__:
            self.sentence_vectors.close()
