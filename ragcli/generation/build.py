"""Config sections -> generation stage objects. The `type:` union in config.py is the registry; no import by string."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable

from ragcli.config import (
    AnthropicLLMConfig,
    LlamaCppLLMConfig,
    LLMLinguaCompressionConfig,
    OpenAICompatibleLLMConfig,
    PipelineConfig,
    ScriptedLLMConfig,
    SentenceCompressionConfig,
    TransformersLLMConfig,
)
from ragcli.cost.prices import PriceTable
from ragcli.generation.protocols import LLM, Compressor, Packer
from ragcli.generation.sentence_compressor import EmbedFn

log = logging.getLogger(__name__)


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed (checked without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def _transformers_llm(c: LlamaCppLLMConfig | TransformersLLMConfig) -> LLM:
    """The local model under transformers: asked for, or the fallback where llama-cpp-python is missing."""
    from ragcli.generation.transformers_llm import TransformersLLM

    return TransformersLLM(
        c.model, context_window=c.context_window, temperature=c.temperature, repeat_penalty=c.repeat_penalty
    )


def build_llm(cfg: PipelineConfig, prices: PriceTable) -> LLM:
    """The configured LLM. Nothing here reaches the network; API clients connect on their first call."""
    c = cfg.llm
    if isinstance(c, LlamaCppLLMConfig):
        if not llama_cpp_available():
            log.warning(
                "llama-cpp-python is not installed: running %s under transformers instead (slower; the first run "
                "converts the GGUF once and caches it)",
                c.model,
            )
            return _transformers_llm(c)
        from ragcli.generation.llama_cpp_llm import LlamaCppLLM

        return LlamaCppLLM(
            c.model,
            context_window=c.context_window,
            temperature=c.temperature,
            threads=c.threads,
            repeat_penalty=c.repeat_penalty,
        )
    if isinstance(c, TransformersLLMConfig):
        return _transformers_llm(c)
    if isinstance(c, OpenAICompatibleLLMConfig):
        from ragcli.generation.openai_compatible_llm import OpenAICompatibleLLM

        return OpenAICompatibleLLM(
            c.model,
            prices,
            base_url=c.base_url,
            api_key_env=c.api_key_env,
            context_window=c.context_window,
            temperature=c.temperature,
            timeout_s=c.timeout_s,
            max_retries=c.max_retries,
            price_as=c.price_as,
        )
    if isinstance(c, AnthropicLLMConfig):
        from ragcli.generation.anthropic_llm import AnthropicLLM

        return AnthropicLLM(
            c.model,
            prices,
            api_key_env=c.api_key_env,
            context_window=c.context_window,
            temperature=c.temperature,
            timeout_s=c.timeout_s,
            max_retries=c.max_retries,
        )
    if isinstance(c, ScriptedLLMConfig):
        from ragcli.generation.scripted_llm import ScriptedLLM

        return ScriptedLLM(c.replies, context_window=c.context_window)
    raise AssertionError(f"unhandled llm config {type(c).__name__}")  # the config union is closed


def build_packer(cfg: PipelineConfig, llm: LLM) -> Packer:
    """The token-budget packer, counting tokens with the target LLM's own counter."""
    from ragcli.generation.sentence_model import load_sentence_model
    from ragcli.generation.token_budget_packer import TokenBudgetPacker

    p = cfg.packing
    return TokenBudgetPacker(
        llm.count_tokens,
        select_sentences=p.select_sentences,
        sentence_neighbors=p.sentence_neighbors,
        order=p.order,
        min_sentence_score=p.min_sentence_score,
        fill=p.fill,
        expand_query=p.expand_query,
        min_relative_score=p.min_relative_score,
        max_score_gap=p.max_score_gap,
        min_hits=p.min_hits,
        sentence_model=(
            load_sentence_model(p.sentence_model, cfg.home_dir())
            if p.select_sentences and p.sentence_model
            else None
        ),
    )


def build_compressor(
    cfg: PipelineConfig,
    count_tokens: Callable[[str], int],
    embed: EmbedFn | None = None,
    embedder_name: str | None = None,
) -> Compressor | None:
    """The `compression:` stage, counting with `count_tokens` (the target LLM's tokenizer in the query path);
    `None` when it is off. `embedder_name` names the model behind `embed` (the unit model's gate reads its
    question vectors only when it is the one the card was trained with)."""
    c = cfg.compression
    if isinstance(c, SentenceCompressionConfig):
        from ragcli.generation.sentence_compressor import SentenceCompressor

        unit_model = None
        if c.unit_model:
            from ragcli.generation.unit_model import load_unit_model

            unit_model = load_unit_model(c.unit_model, cfg.home_dir())
        return SentenceCompressor(
            count_tokens,
            prune_words=c.prune_words,
            embed=embed if c.use_embeddings else None,
            fill=c.fill,
            pair_weight=1.0 if c.block_pairs else 0.0,
            unit_model=unit_model,
            question_embed=(
                embed if unit_model is not None and embedder_name == unit_model.embedder else None
            ),
            whole_source_tokens=c.whole_source_tokens,
        )
    if isinstance(c, LLMLinguaCompressionConfig):
        from ragcli.generation.llmlingua_compressor import LLMLinguaCompressor

        return LLMLinguaCompressor(count_tokens, model=c.model, long=c.long, device=c.device)
    return None
