"""YAML pipeline config -> pydantic models -> stage objects.

Every section is a pydantic model with `extra="forbid"`. A stage with variants is a discriminated union on
`type:`; the union is the registry, closed and listed in its error messages. Secrets appear only as
environment-variable names (`api_key_env`). `build_*` functions turn a validated section into its stage object,
importing heavy libraries only inside the adapter that needs them.
"""

from __future__ import annotations

import os
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ragcli.errors import ConfigError

PRESETS_PACKAGE = "ragcli.pipelines.presets"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- store


class QdrantEdgeStoreConfig(_Section):
    """Qdrant's in-process engine: the embedded default."""

    type: Literal["qdrant_edge"] = "qdrant_edge"
    path: str | None = None
    """Folder holding one shard folder per collection (`<path>/<collection>`); default `<home>/qdrant`."""
    lock_timeout_s: float = Field(30.0, ge=0, le=86400)
    """How long a command waits for a collection that another process holds open (one process at a time)."""


class QdrantStoreConfig(_Section):
    """A Qdrant server or cluster through qdrant-client (`url`), or its local stand-ins (`:memory:`, `path`)."""

    type: Literal["qdrant"] = "qdrant"
    url: str | None = None
    location: str | None = None
    """`:memory:` for the in-process stand-in used in tests."""
    path: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 30.0

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {v!r}")
        return v


StoreConfig = Annotated[QdrantEdgeStoreConfig | QdrantStoreConfig, Field(discriminator="type")]

FieldType = Literal["keyword", "integer", "float", "bool"]

# ---------------------------------------------------------------- embedder


class SentenceTransformersEmbedderConfig(_Section):
    type: Literal["sentence_transformers"] = "sentence_transformers"
    model: str = "all-MiniLM-L6-v2"
    """`all-MiniLM-L6-v2` is the packaged model (offline); otherwise a local folder or a hub id."""
    batch_size: int = Field(32, ge=1, le=4096)
    device: str = "cpu"
    backend: Literal["auto", "fastest", "torch", "onnx", "openvino", "openvino_int8"] = "auto"
    """`auto`: ONNX Runtime on a CPU when it is installed (the same vectors as torch, the least memory, no torch
    import), else torch. `fastest`: as `auto`, but an ingest's large batches go to torch where this machine
    measured it faster (once per machine and export, remembered under `<home>/onnx/`; since the eager-attention
    export ONNX Runtime is the faster on an AVX-512 Xeon, where torch was 1.47-1.55x faster before); queries stay
    on ONNX Runtime. `openvino_int8` (extra `openvino`): the model quantized once per machine on the first large
    batch and run by OpenVINO, used only if every checked vector keeps cosine >= 0.99 to fp32; 1.56-1.82x
    LlamaIndex's ingest speed on SciFact on that Xeon, 2.75x ONNX Runtime, nDCG@10 0.685 vs 0.680."""


class HashEmbedderConfig(_Section):
    """A deterministic fake for tests and demos of plumbing: no model, no meaning."""

    type: Literal["hash"] = "hash"
    dim: int = Field(64, ge=8, le=4096)


class OpenAIEmbedderConfig(_Section):
    type: Literal["openai"] = "openai"
    model: str = "text-embedding-3-small"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    dim: int | None = None
    batch_size: int = Field(128, ge=1, le=2048)


EmbedderConfig = Annotated[
    SentenceTransformersEmbedderConfig | HashEmbedderConfig | OpenAIEmbedderConfig,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- ingest


class ChunkingProfile(_Section):
    max_tokens: int | None = Field(None, ge=16)
    min_tokens: int | None = Field(None, ge=0)
    overlap_tokens: int | None = Field(None, ge=0)


class ChunkingConfig(_Section):
    max_tokens: int = Field(256, ge=16)
    """Hard maximum in the embedding model's own tokens; capped at the model's max sequence length."""
    min_tokens: int = Field(48, ge=0)
    """Tiny neighbours merge up to this size."""
    overlap_tokens: int = Field(0, ge=0)
    breadcrumb_in_embedding: bool = True
    """Prepend `Title > Section` to the text that is embedded (never to the text that is sent to the LLM)."""
    profile: Literal["auto", "prose", "markdown", "pdf", "html", "code", "table"] = "auto"
    profiles: dict[str, ChunkingProfile] = Field(default_factory=dict)


class ParserConfig(_Section):
    """How files are read: unstructured where it is installed, the builtin readers otherwise."""

    text_reader: Literal["builtin", "unstructured"] = "builtin"
    """`builtin` splits plain text at blank lines; `unstructured` tags each paragraph with spaCy (slower)."""
    markdown_reader: Literal["builtin", "unstructured"] = "builtin"
    html_main_content: bool = True
    """Keep only the main content of HTML pages (navigation and boilerplate dropped)."""
    pdf_strategy: Literal["fast", "auto", "hi_res", "ocr_only"] = "fast"


class IngestConfig(_Section):
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
    parser: ParserConfig = Field(default_factory=ParserConfig)
    sparse: bool = False
    """Also write BM25-style sparse vectors (needed for hybrid search)."""
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Metadata added to every chunk of this config's ingests."""
    skip_hidden: bool = True


# ---------------------------------------------------------------- retrieval


class Bm25EncoderConfig(_Section):
    """BM25 sparse vectors (hybrid search). Ingest and query must use the same settings."""

    k: float = Field(1.2, ge=0)
    b: float = Field(0.75, ge=0, le=1)
    avg_len: float = Field(256.0, gt=0)
    """The corpus's average document length in tokens."""
    language: str = "english"


class RetrievalConfig(_Section):
    mode: Literal["dense", "sparse", "hybrid"] = "dense"
    candidates: int = Field(20, ge=1, le=1000)
    """How many hits the search returns before rerank."""
    top_k: int = Field(5, ge=1, le=200)
    """How many hits go on to packing when there is no reranker."""
    second_hop: int = Field(0, ge=0, le=50)
    """Hits a second search may add after the first ones: it searches with the question plus the names that the
    best-matching sentences of the first hits hold (a multi-hop question's bridge entity). 0: off. One more query
    embedding and search per question; measured on HotpotQA (benchmarks/results/qa.md)."""
    where: str | dict[str, Any] | None = None
    """A default filter: an expression (`type = 'pdf' and year >= 2020`) or the YAML mapping form
    (`{type: pdf, year: {gte: 2020}}`); see `ragcli.retrieval.filter_parser`."""
    tenant: str | dict[str, Any] | None = None
    """A mandatory filter that every query is ANDed with: a query can narrow it, never widen it."""
    prefetch: int | None = Field(None, ge=1, le=10000)
    """Hybrid only: hits each of dense and sparse search hands to fusion (default max(2 x candidates, 20))."""
    rrf_k: int = Field(60, ge=1)
    """Hybrid only: reciprocal rank fusion's k."""
    fusion: str = "rrf"
    """Hybrid only: `rrf` (the store fuses by rank), or `trained:NAME` / a folder: a fusion trained on your labels
    with `ragcli train fusion`, which re-orders RRF's top candidates by the dense and BM25 scores."""
    bm25: Bm25EncoderConfig = Field(default_factory=Bm25EncoderConfig)

    @model_validator(mode="after")
    def _fusion_needs_hybrid(self) -> RetrievalConfig:
        if not self.fusion.strip():
            raise ValueError(
                "fusion is empty; use rrf, or trained:NAME for a fusion from `ragcli train fusion`"
            )
        if self.fusion != "rrf" and self.mode != "hybrid":
            raise ValueError(
                f"fusion {self.fusion!r} fuses a dense and a BM25 ranking, but mode is {self.mode!r}; "
                "set retrieval.mode: hybrid (and ingest.sparse: true), or fusion: rrf"
            )
        return self


class NoRerankerConfig(_Section):
    type: Literal["none"] = "none"


class CrossEncoderRerankerConfig(_Section):
    type: Literal["cross_encoder"] = "cross_encoder"
    model: str
    """A hub id, a local folder, or `trained:NAME` for a reranker trained with `ragcli train reranker`."""
    top_n: int = Field(5, ge=1, le=200)
    min_score: float | None = None
    dedupe_threshold: float | None = Field(0.95, ge=0.0, le=1.0)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(256, ge=16)
    backend: Literal["torch", "int8", "onnx", "onnx_int8", "openvino_int8"] = "torch"
    """`int8`: torch's dynamic int8 quantization on the CPU (about 1.6x faster; reorders close scores); `onnx`
    (needs onnxruntime) keeps the scores exactly; `onnx_int8`: ONNX Runtime's per-channel int8, about as fast as
    `int8` with scores much closer to fp32 (benchmarks/results/retrieval_trained.md); `openvino_int8` (extra
    `openvino`): quantized once by `ragcli train quantize-reranker`, 1.6-1.7x `onnx_int8` with scores closer still."""


class FlagRerankerConfig(_Section):
    type: Literal["flag"] = "flag"
    model: str
    top_n: int = Field(5, ge=1, le=200)
    min_score: float | None = None
    dedupe_threshold: float | None = Field(0.95, ge=0.0, le=1.0)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(256, ge=16)
    use_fp16: bool = False


RerankerConfig = Annotated[
    NoRerankerConfig | CrossEncoderRerankerConfig | FlagRerankerConfig, Field(discriminator="type")
]

# ---------------------------------------------------------------- prompt, packing


class PackingConfig(_Section):
    budget_tokens: int | None = Field(None, ge=16)
    """Cap on context tokens; the real budget is also limited by the model's window."""
    select_sentences: bool = False
    """Keep only the sentences of each chunk that bear on the question (query-aware extractive packing)."""
    sentence_neighbors: int = Field(0, ge=0, le=3)
    order: Literal["relevance", "edges"] = "edges"
    """`edges` puts the strongest evidence first and last, where models read best."""
    min_sentence_score: float = Field(0.0, ge=0.0)
    fill: Literal["density", "rank"] = "density"
    """`density` fills by relevance per token (the last hit trimmed at a sentence); `rank` in the ranked order."""
    expand_query: bool = True
    """With `select_sentences`: add the names found in the best sentences to the question (a second hop)."""
    sentence_model: str | None = None
    """With `select_sentences`: a learned sentence scorer interleaved with the lexical one, `packaged:qa-sentences`
    (inside ragcli), `trained:NAME` (`ragcli train sentence-model`) or the path of a card; None: lexical only."""

    min_relative_score: float | None = Field(None, ge=0.0, le=1.0)
    """Adaptive context: pack a hit only if its score is >= this share of the top hit's (None: off)."""
    max_score_gap: float | None = Field(None, ge=0.0)
    """Adaptive context: pack a hit only if it scores at most this much below the top hit (None: off)."""
    min_hits: int = Field(1, ge=1)
    """Adaptive context: the first hits packed whatever their scores."""

    @model_validator(mode="after")
    def _model_needs_selection(self) -> PackingConfig:
        if self.sentence_model is not None and not self.sentence_model.strip():
            raise ValueError(
                "sentence_model is empty; use packaged:qa-sentences, a card's path, or leave it out"
            )
        if self.sentence_model and not self.select_sentences:
            raise ValueError(
                f"sentence_model {self.sentence_model!r} scores sentences, but select_sentences is false; "
                "set select_sentences: true, or remove sentence_model"
            )
        return self


DEFAULT_SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources. Cite sources as [1], [2]. "
    "If the sources do not contain the answer, say you don't know."
)


class PromptConfig(_Section):
    system: str = DEFAULT_SYSTEM_PROMPT
    max_output_tokens: int = Field(256, ge=1)
    no_sources: Literal["refuse", "call_llm"] = "refuse"
    """With no source left after search, filters and cut-offs: `refuse` answers so without a model call;
    `call_llm` asks the model anyway (it can only answer from its own knowledge)."""


# ---------------------------------------------------------------- compression

PromptPart = Literal["context", "system"]


def _context_only() -> list[PromptPart]:
    return ["context"]


class NoCompressionConfig(_Section):
    type: Literal["none"] = "none"


class SentenceCompressionConfig(_Section):
    """Query-aware compression by sentence selection (and optional word pruning); no model, ~ms per prompt."""

    type: Literal["sentences"] = "sentences"
    ratio: float | None = Field(2.0, ge=1.0)
    """Original / compressed tokens; met within 10 %."""
    target_tokens: int | None = Field(None, ge=1)
    """A hard cap on each compressed part's tokens (with `ratio` too, the smaller wins)."""
    min_tokens: int = Field(128, ge=0)
    """Parts shorter than this are sent as they are."""
    parts: list[PromptPart] = Field(default_factory=_context_only)
    """Which prompt parts to compress."""
    prune_words: bool = False
    """Also drop words inside kept sentences (stopwords first; never numbers, codes, names)."""
    use_embeddings: bool = False
    """Add the embedder's question-sentence similarity to the lexical score (one embedding call per query)."""
    fill: bool = True
    """Spend what whole sentences leave of the target on the leading words of the next best one (ending " …"),
    so the ratio reached is the ratio asked; false keeps whole sentences only."""
    block_pairs: bool = True
    """When the prompt part's blocks have titles (the packed sources' headers, a document's headings), also rank
    them in pairs: a multi-hop question's two paragraphs cover it together and one names the other's title (a
    model packaged with ragcli, trained on HotpotQA), beside the retriever's scores. False ranks each block
    alone."""
    unit_model: str | None = None
    """A learned unit scorer behind a question-type gate: `packaged:qa-units` (trained on HotpotQA and NQ),
    `trained:NAME` (`ragcli train unit-model`: its trees on your questions, the gate kept) or a card file. A
    question the gate calls single-hop has its units ranked by the model (the answer is often a sentence that
    shares few of the question's words); multi-hop questions keep the weights. The gate embeds
    the question with the config's embedder when it is the card's (else it reads the question's words alone).
    Measured at a 132-token context in two-fold cross-validation: NQ's answer kept 78.7 -> 89.7-91.0 %, HotpotQA
    74.8-75.2 % (75.2 % without; benchmarks/results/qa.md, 2026-12-04)."""
    whole_source_tokens: int = Field(0, ge=0)
    """With `unit_model`: a question its gate is sure is single-hop (and that does not weigh "A or B") gets the
    one source that holds its best sentence, whole, when that source is at most this many tokens, in place of
    sentences cut from all sources to the target; it may go over `target_tokens`. When the source closest to the
    question by embedding (the stored chunk vectors against the query's) is another one, that source's two best
    sentences come too. 0 is off. Measured at a 132-token target with 256 here, two-fold CV over three shuffles:
    NQ 89.0-90.3 -> 94.3-95.0 % answer in context at 151-152 prompt tokens (was 154), HotpotQA 74.8-75.7 ->
    74.8-75.2 % at 160 (was 161); benchmarks/results/qa.md, 2026-12-04 night."""

    @model_validator(mode="after")
    def _whole_source_needs_gate(self) -> SentenceCompressionConfig:
        if self.whole_source_tokens and not self.unit_model:
            raise ValueError(
                "whole_source_tokens needs the unit model's question-type gate; "
                "set compression.unit_model: packaged:qa-units, or whole_source_tokens: 0"
            )
        return self


class LLMLinguaCompressionConfig(_Section):
    """LLMLingua / LongLLMLingua token pruning by a causal LM's perplexity (`pip install 'ragcli[llmlingua]'`)."""

    type: Literal["llmlingua"] = "llmlingua"
    model: str = "smollm2-135m-instruct"
    ratio: float | None = Field(2.0, ge=1.0)
    target_tokens: int | None = Field(None, ge=1)
    min_tokens: int = Field(128, ge=0)
    parts: list[PromptPart] = Field(default_factory=_context_only)
    long: bool = False
    """LongLLMLingua's question-aware mode."""
    device: str = "cpu"


CompressionConfig = Annotated[
    NoCompressionConfig | SentenceCompressionConfig | LLMLinguaCompressionConfig, Field(discriminator="type")
]

# ---------------------------------------------------------------- llm


class LlamaCppLLMConfig(_Section):
    """The local small model (SmolLM2-135M-Instruct GGUF by default): free, offline, weak."""

    type: Literal["llama_cpp"] = "llama_cpp"
    model: str = "smollm2-135m-instruct"
    """`smollm2-135m-instruct` is the packaged model; otherwise a path to a .gguf file."""
    context_window: int = Field(2048, ge=256)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
    """Above 1 discourages the small model's loops at temperature 0 (1.0 turns it off)."""
    threads: int | None = None
    """CPU threads; default llama.cpp's (half the cores). More threads than free cores slow it down sharply."""


class TransformersLLMConfig(_Section):
    """The local model under transformers (used where llama-cpp-python could not be built)."""

    type: Literal["transformers"] = "transformers"
    model: str = "smollm2-135m-instruct"
    context_window: int = Field(2048, ge=256)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)


class OpenAICompatibleLLMConfig(_Section):
    """Any OpenAI-compatible endpoint: OpenAI, vLLM, llama.cpp server, Ollama, DeepSeek, Qwen..."""

    type: Literal["openai"] = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable holding the key; null for servers that need none."""
    context_window: int | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    price_as: str | None = None
    """Price this model as another one from the price table (e.g. a self-hosted model at 0)."""


class AnthropicLLMConfig(_Section):
    type: Literal["anthropic"] = "anthropic"
    model: str
    api_key_env: str = "ANTHROPIC_API_KEY"
    context_window: int | None = None
    temperature: float = Field(0.0, ge=0.0, le=1.0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)


class ScriptedLLMConfig(_Section):
    """A fake that answers from a script and records its prompts: for tests of plumbing only."""

    type: Literal["scripted"] = "scripted"
    replies: list[str] = Field(default_factory=lambda: ["A scripted answer [1]."])
    context_window: int = 4096


LLMConfig = Annotated[
    LlamaCppLLMConfig
    | TransformersLLMConfig
    | OpenAICompatibleLLMConfig
    | AnthropicLLMConfig
    | ScriptedLLMConfig,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- cost


class PriceOverride(_Section):
    input: float = Field(ge=0)
    """Dollars per million input tokens."""
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    """Dollars per million input tokens written to the prompt cache, 5-minute TTL (default: `input`)."""
    cache_write_1h: float | None = Field(None, ge=0)
    """Dollars per million input tokens written to the prompt cache, 1-hour TTL (default: `cache_write`)."""
    batch_discount: float = Field(0.5, ge=0, le=1)
    context_window: int | None = None


class BudgetsConfig(_Section):
    """Dollar limits. Every paid call reserves its worst-case cost before it runs; over a limit it is refused."""

    per_query_usd: float | None = Field(None, ge=0)
    """All paid calls of one query together (embedding, rerank, every LLM call of a cascade, summaries)."""
    per_day_usd: float | None = Field(None, ge=0)
    """All queries of a UTC day, shared by every process that uses the same ledger."""
    per_tenant_day_usd: float | None = Field(None, ge=0)
    """Each tenant's queries of a UTC day (the tenant a query is made for: `QueryOptions.tenant`)."""


class CostConfig(_Section):
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    use_litellm_prices: bool = True
    """Also read LiteLLM's bundled price file when litellm is installed (never imports litellm)."""
    use_genai_prices: bool = True
    """Price API models from genai-prices' bundled data (offline; never downloads), before LiteLLM's file."""
    ledger: str | None = None
    """SQLite file; default `<home>/ledger.sqlite`."""
    max_usd_per_query: float | None = Field(None, ge=0)
    """Older spelling of `budgets.per_query_usd` (used when that is not set)."""
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)


class CacheConfig(_Section):
    """The answer cache (issue 10): exact, then semantic checked by a trained verifier. Off unless enabled."""

    enabled: bool = False
    target_precision: float = Field(0.95, ge=0.5, lt=1.0)
    """Precision the verifier's threshold is calibrated to (lower bound of a 95 % Wilson interval)."""
    ttl_s: int | None = Field(7 * 24 * 3600, ge=1)
    """Seconds an entry lives; null keeps it until a re-ingest invalidates it."""
    verifier: str | None = None
    """A verifier under `<home>/verifiers/` (`ragcli train cache-verifier`); null: the one trained last."""
    semantic: Literal["verifier", "cosine", "off"] = "verifier"
    """`verifier`: serve a paraphrase only when the verifier clears its threshold (exact tier only when none is
    trained); `cosine`: serve on cosine >= cosine_threshold alone (GPTCache's recipe, not precision-safe)."""
    cosine_threshold: float = Field(0.9, ge=-1.0, le=1.0)
    candidates: int = Field(5, ge=1, le=50)
    """Nearest cached questions the verifier scores."""
    history: Literal["skip", "standalone"] = "skip"
    """A question asked with chat history: `skip` never caches it; `standalone` keys it by its standalone
    rewrite when the pipeline has one (`QueryOptions.standalone_question`), and skips it otherwise."""
    collection: str = Field("answer_cache", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
    """The cache's own collection in the configured store."""
    db: str | None = None
    """SQLite file of the entries; default `<home>/answer_cache.sqlite`."""
    version: str = ""
    """Part of every key: change it to stop serving every entry written before."""


# ---------------------------------------------------------------- shared state


class StateConfig(_Section):
    """Where the ledger, budgets and API keys live: SQLite files by default, PostgreSQL when a DSN is given."""

    dsn_env: str | None = None
    """Name of the environment variable holding a PostgreSQL DSN (e.g. `RAGCLI_PG_DSN`); when set, the ledger,
    budgets and API keys live in that database, shared exactly by several processes and hosts."""
    keys: str | None = None
    """SQLite file of the gateway's API keys (without a DSN); default `<home>/keys.sqlite`."""


# ---------------------------------------------------------------- routing: tiers, rules, learned router, cascade


class RouteRuleConfig(_Section):
    """A rule that picks a tier before any model runs; the first rule whose conditions all hold wins."""

    tier: int | str
    """The tier: its index in `tiers` (0 = cheapest) or its model name."""
    budget_left_below_usd: float | None = Field(None, ge=0)
    """Holds when the query's budget has less than this many dollars left."""
    prompt_tokens_above: int | None = Field(None, ge=0)
    prompt_tokens_below: int | None = Field(None, ge=0)
    has_filter: bool | None = None
    """Holds when the query has (true) or has no (false) metadata filter."""
    question_matches: str | None = None
    """A regular expression searched in the question (case-insensitive)."""

    @field_validator("question_matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            import re

            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class RouterTargetConfig(_Section):
    """What the learned router's threshold is calibrated to (on its held-out labels): one of the two."""

    strong_share: float | None = Field(None, ge=0, le=1)
    """Share of calls sent past the cheapest tier."""
    quality_floor: float | None = Field(None, gt=0, le=1.5)
    """Fraction of the strongest tier's quality to keep, at the lowest cost."""

    @model_validator(mode="after")
    def _one(self) -> RouterTargetConfig:
        if (self.strong_share is None) == (self.quality_floor is None):
            raise ValueError("set exactly one of strong_share, quality_floor")
        return self


class CascadeConfig(_Section):
    """Answer with a cheaper tier first; escalate to the next tier when the answer fails the check."""

    enabled: bool = False
    check: Literal["grounded"] = "grounded"
    """`grounded`: the answer cites the packed sources and its content words appear in them."""
    min_word_overlap: float = Field(0.6, ge=0, le=1)
    """Share of the answer's content words that must appear in the packed sources."""
    require_citation: bool = True
    escalate_on_refusal: bool = True
    """An "I don't know" from a cheap tier escalates."""


class RouterConfig(_Section):
    """How a query picks its tier: rules first, then the learned router, else the cheapest tier; then the
    cascade escalates on a failed check."""

    rules: list[RouteRuleConfig] = Field(default_factory=list)
    model: str | None = None
    """A router trained with `ragcli train router --name NAME` (folder `<home>/routers/NAME`)."""
    target: RouterTargetConfig | None = None
    """Recalibrate the trained router's threshold; default: the threshold saved at training."""
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)


# ---------------------------------------------------------------- the whole pipeline


class ChatConfig(_Section):
    """`ragcli chat`'s history: the last turns verbatim, older ones in a running summary with a hard cap."""

    window_turns: int = Field(4, ge=0)
    """Turns sent verbatim with each question."""
    summary_cap_tokens: int = Field(200, ge=0)
    """Hard cap on the running summary of older turns (the answering model's tokens)."""
    summarizer: Literal["extractive", "llm"] = "extractive"
    """`extractive`: sentences kept from the expired turns, no model call, free. `llm`: notes written by the
    cheapest tier, one call per fold over the newly expired turns only; each call is a hidden-cost ledger row."""
    summary_max_tokens: int = Field(128, ge=16)
    """Output cap of one summariser call (`llm` only)."""


class PipelineConfig(_Section):
    """A whole pipeline: what a preset or a user's YAML file describes."""

    name: str = "custom"
    description: str = ""
    home: str | None = None
    """Where ragcli writes (store, ledger, caches); default `$RAGCLI_HOME` or `~/.ragcli`."""
    collection: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    store: StoreConfig = Field(default_factory=QdrantEdgeStoreConfig)
    filterable: dict[str, FieldType] = Field(default_factory=dict)
    """Payload fields that filters may use; each gets a payload index."""
    embedder: EmbedderConfig = Field(default_factory=SentenceTransformersEmbedderConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    reranker: RerankerConfig = Field(default_factory=NoRerankerConfig)
    packing: PackingConfig = Field(default_factory=PackingConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    compression: CompressionConfig = Field(default_factory=NoCompressionConfig)
    llm: LLMConfig = Field(default_factory=LlamaCppLLMConfig)
    tiers: list[LLMConfig] = Field(default_factory=list)
    """Model tiers, cheapest first, each a full LLM config; empty: `llm` is the only tier."""
    router: RouterConfig = Field(default_factory=RouterConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)

    @field_validator("collection")
    @classmethod
    def _collection_stays_in_its_folder(cls, v: str) -> str:
        # the name becomes a folder under the store's path: '.' or '..' would escape it, a leading dot hides it
        if v.startswith("."):
            raise ValueError(
                f"collection {v!r} must not start with '.' (it names a folder under the store); "
                "use letters, digits, '_', '-' and '.' after the first character"
            )
        return v

    def home_dir(self) -> Path:
        from ragcli.resources import ragcli_home

        return Path(self.home).expanduser() if self.home else ragcli_home()


# ---------------------------------------------------------------- loading


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + p)
    return "".join(parts) or "(top level)"


def _describe(err: Any) -> str:
    """One line per pydantic error: `path: what is wrong (fix)`."""
    # pydantic puts the union member's tag into the location of errors inside a discriminated union
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
    path = _yaml_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        near = _near_key(loc)
        if near:
            return f"{path}: unknown key; did you mean {near!r}? (`ragcli config show` lists the keys)"
        return f"{path}: unknown key (remove it, or check its spelling against `ragcli config show`)"
    if kind == "union_tag_invalid":
        allowed = err.get("ctx", {}).get("expected_tags", "")
        return f"{path}.type: {err['input']!r} is not a known type; use one of {allowed}"
    if kind == "union_tag_not_found":
        return f"{path}: missing `type:` key; add one of {err.get('ctx', {}).get('expected_tags', '')}"
    if kind == "missing":
        return f"{path}: required key is missing"
    return f"{path}: {err['msg']} (got {err.get('input')!r})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models a field's type holds (through Optional, unions, lists and dicts)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _near_key(loc: tuple[int | str, ...]) -> str | None:
    """The known key closest in spelling to an unknown one at `loc` ("retrival" -> "retrieval"), if any is close."""
    import difflib

    models: list[type[BaseModel]] = [PipelineConfig]
    for part in loc[:-1]:
        if not isinstance(part, str) or not any(part in model.model_fields for model in models):
            continue  # a list index, or a key of a mapping of configs (a chunking profile's name)
        models = [
            m
            for model in models
            if part in model.model_fields
            for m in _models_in(model.model_fields[part].annotation)
        ]
    known = sorted({name for model in models for name in model.model_fields})
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.75) if loc else []
    return close[0] if close else None


_UNION_TAGS = {
    "qdrant_edge", "qdrant", "sentence_transformers", "hash", "openai", "none", "cross_encoder", "flag",
    "llama_cpp", "transformers", "anthropic", "scripted", "sentences", "llmlingua",
}  # fmt: skip


def parse_config(data: Any, *, source: str = "config") -> PipelineConfig:
    """Validate a mapping as a pipeline config; raise `ConfigError` listing every problem at once."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the config", problems) from None
    problems = _filter_problems(cfg) + _routing_problems(cfg)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the config", problems)
    return cfg


def _filter_problems(cfg: PipelineConfig) -> list[str]:
    """Parse `retrieval.where` and `retrieval.tenant` against `filterable:` now, not at the first query."""
    from ragcli.errors import InputError
    from ragcli.retrieval.filter_parser import parse_where

    problems = []
    for key in ("where", "tenant"):
        try:
            parse_where(getattr(cfg.retrieval, key), cfg.filterable)
        except InputError as exc:
            problems.append(f"retrieval.{key}: {exc}")
    return problems


def _routing_problems(cfg: PipelineConfig) -> list[str]:
    """Tier names and the rules' tiers, checked now rather than at the first query that reaches them (a scripted
    tier, a test fake, has no model name until it is built: then nothing is checked here)."""
    tiers = cfg.tiers or [cfg.llm]
    names = [m for m in (getattr(t, "model", None) for t in tiers) if isinstance(m, str)]
    if len(names) != len(tiers):
        return []
    problems = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            problems.append(
                f"tiers[{i}].model: {name!r} is also tiers[{seen[name]}]; rules, router labels and the ledger tell "
                "tiers apart by model name, so give each tier a different model"
            )
        seen.setdefault(name, i)
    from ragcli.generation.tier_router import tier_index

    for i, rule in enumerate(cfg.router.rules):
        try:
            tier_index(rule.tier, names, f"router.rules[{i}].tier")  # the check the router makes when built
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def preset_names() -> list[str]:
    files = importlib_resources.files(PRESETS_PACKAGE).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def load_config(
    ref: str | os.PathLike[str] | None = None, *, overrides: dict[str, Any] | None = None
) -> PipelineConfig:
    """Load a config from a YAML file path or a preset name (default: `local`).

    A file may start from a preset or another file (`extends: lean`, or a path relative to the file): its keys are
    merged over that one's, section by section (`retrieval: {top_k: 12}` changes one key of the base's
    `retrieval`; `null` clears a key back to its default)."""
    data, source = _read_config(ref, Path.cwd(), [])
    if overrides:
        data = _deep_merge(data, overrides)
    return parse_config(data, source=source)


_MAX_EXTENDS = 8


def _read_config(
    ref: str | os.PathLike[str] | None, folder: Path, chain: list[str]
) -> tuple[dict[str, Any], str]:
    """The YAML mapping of a preset or file with its `extends:` chain merged in, and where it came from."""
    ref = "local" if ref is None else ref
    path = Path(ref)
    if not path.is_absolute() and (path.suffix in (".yaml", ".yml") or (folder / path).exists()):
        path = folder / path
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(
                f"config file {str(path)!r} does not exist; give a YAML file or a preset name "
                f"({', '.join(preset_names())})"
            )
        text = path.read_text(encoding="utf-8")
        source, key, here = str(path), str(path.resolve()), path.parent
    else:
        name = str(ref)
        if name not in preset_names():
            raise ConfigError(
                f"unknown preset {name!r}; presets are: {', '.join(preset_names())} (or give a path to a YAML file)"
            )
        text = importlib_resources.files(PRESETS_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        source, key, here = f"preset {name}", f"preset {name}", folder
    if key in chain or len(chain) >= _MAX_EXTENDS:
        raise ConfigError(
            f"{source}: `extends:` goes round in a loop or too deep ({' -> '.join([*chain, key])})"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    base = data.pop("extends", None)
    if base is None:
        return data, source
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{source}: extends: must be a preset name or a YAML path, got {base!r}")
    base_data, _ = _read_config(base.strip(), here, [*chain, key])
    return _deep_merge(base_data, data), source


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def dump_config(cfg: PipelineConfig) -> str:
    """The effective config as YAML, every default filled in."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
