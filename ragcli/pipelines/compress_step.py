"""The compression step of the query path: shorten the packed context (and, if configured, the system prompt)
to the `compression:` target before the messages are built.

    compress(question, prepared, retrieved, stages, opts, rec) -> Prepared

Off unless the config names a compressor (`compression: {type: sentences, ratio: 2}`). Parts shorter than
`min_tokens` are left alone. The packed blocks' retrieval (or rerank) scores are the compressor's coarse prior.
A citation whose `[n]` block was dropped whole is dropped from the answer's citations too.
"""

from __future__ import annotations

from dataclasses import replace

from ragcli.generation.compression_types import CompressionTarget
from ragcli.generation.prompts import build_messages, count_parts
from ragcli.generation.sentence_compressor import SOURCE_LINE, SentenceCompressor
from ragcli.pipelines.query_pipeline import Prepared, QueryOptions, Retrieved
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages


def compress(
    question: str, prepared: Prepared, retrieved: Retrieved, stages: Stages, opts: QueryOptions, rec: Recorder
) -> Prepared:
    """Compress the configured prompt parts; the trace entry `compress` says tokens before and after."""
    comp = stages.compressor
    cfg = stages.config.compression
    if comp is None or cfg.type == "none":
        return prepared
    target = CompressionTarget(ratio=cfg.ratio, tokens=cfg.target_tokens)
    context = prepared.context
    system = stages.config.prompt.system
    count = stages.llm.count_tokens
    with rec.stage("compress", comp.name) as s:
        if "context" in cfg.parts and context.tokens >= cfg.min_tokens:
            scores = {h.chunk.id: h.score for h in retrieved.hits}
            block_scores = [scores.get(c.chunk_id, 0.0) for c in context.citations]
            if isinstance(comp, SentenceCompressor):
                done = comp.compress(question, context.text, target, block_scores=block_scores)
            else:
                done = comp.compress(question, context.text, target)
            kept = {int(m.group(1)) for m in SOURCE_LINE.finditer(done.text)}
            context = replace(
                context,
                text=done.text,
                tokens=done.tokens,
                citations=[c for c in context.citations if c.number in kept],
            )
            s.detail.update(
                context_before=done.original_tokens,
                context_after=done.tokens,
                protected_kept=done.protected_kept,
                protected_total=done.protected_total,
            )
            if done.whole_source:
                s.detail["whole_source"] = True
        if "system" in cfg.parts and system and count(system) >= cfg.min_tokens:
            if isinstance(comp, SentenceCompressor):
                done = comp.compress(question, system, target, sources=False)
            else:
                done = comp.compress(question, system, target)
            system = done.text
            s.detail.update(system_before=done.original_tokens, system_after=done.tokens)
    messages = build_messages(system, context.text, question, opts.history)
    parts = count_parts(count, system, context.text, question, opts.history)
    return Prepared(messages, context, prepared.budget_tokens, parts)
