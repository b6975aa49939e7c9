"""The compression step of the query path: shorten the packed context (and, if configured, the system prompt)
to the `compression:` target before the messages are built.

    compress(question, prepared, retrieved, stages, opts, rec) -> Prepared

Off unless the config names a compressor (`compression: {type: sentences, ratio: 2}`). Parts shorter than
`min_tokens` are left alone. The packed blocks' retrieval (or rerank) scores are the compressor's coarse prior.
A citation whose `[n]` block was dropped whole is dropped from the answer's citations too. With
`whole_source_tokens`, the compressor also gets each block's cosine with the question, from the vectors the store
already holds (read only when a source is sent whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

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
                ids = [c.chunk_id for c in context.citations]
                done = comp.compress(
                    question,
                    context.text,
                    target,
                    block_scores=block_scores,
                    # read from the store only when a source is sent whole
                    block_similarity=lambda: block_similarity(stages, retrieved.query_vector, ids),
                )
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
                if done.closest_units:
                    s.detail["closest_units"] = done.closest_units
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


def block_similarity(
    stages: Stages, query_vector: Sequence[float] | None, chunk_ids: Sequence[str]
) -> list[float | None] | None:
    """The cosine of the query's dense vector with each packed chunk's stored one (what ingest embedded; read back
    from the store, nothing is embedded again: 0.8 ms for 16 chunks in the embedded engine); None for a chunk the
    store no longer holds or one of another length, and no list without a query vector."""
    if query_vector is None or not chunk_ids:
        return None
    q = np.asarray(query_vector, dtype=np.float64)
    q_norm = float(np.linalg.norm(q))
    if q_norm == 0:
        return None
    stored = stages.store.dense_vectors(list(dict.fromkeys(chunk_ids)))
    out: list[float | None] = []
    for cid in chunk_ids:
        v = stored.get(cid)
        if v is None:
            out.append(None)
            continue
        d = np.asarray(v, dtype=np.float64)
        norm = float(np.linalg.norm(d))
        # another length: the collection was embedded by another model than the query (re-ingest pending)
        out.append(float(d @ q) / (norm * q_norm) if norm and d.shape == q.shape else None)
    return out
