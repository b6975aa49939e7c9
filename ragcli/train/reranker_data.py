"""Training data for `ragcli train reranker`: labeled pairs from a JSONL file or BEIR files, plus hard
negatives mined from the user's own index.

Where negatives come from, in order: the index `ragcli eval retrieval` built for the same BEIR corpus (its
`doc_id`s are the corpus ids, so a labeled positive is never taken as a negative); else the config's own
collection when it holds chunks (positives are recognised by their text); else random corpus documents (BEIR
input only). The report says which one was used.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.config import PipelineConfig
from ragcli.errors import InputError
from ragcli.retrieval.protocols import SearchRequest
from ragcli.train.cross_encoder_training import Pair
from ragcli.train.reranker_training import Searcher, build_training_pairs, load_pairs_jsonl
from ragcli.types import Hit

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    pairs: list[Pair]
    negatives_source: str
    data: dict[str, Any]


def _searcher(stages: Any) -> Searcher:
    def search(query: str, k: int) -> Sequence[Hit]:
        dense = stages.embedder.embed_query(query).vectors[0].tolist()
        hits: Sequence[Hit] = stages.store.search(
            SearchRequest(dense=dense, limit=k, filter=stages.tenant_filter)
        )
        return hits

    return search


def _index_stages(cfg: PipelineConfig, corpus: Path | None) -> Any:
    """Stages over the index to mine from, or None when there is none with chunks in it."""
    from ragcli.pipelines.stages import Stages

    candidates = []
    if corpus is not None:
        from ragcli.eval.retrieval_eval import collection_name

        candidates.append(cfg.model_copy(update={"collection": collection_name(corpus, cfg)}))
    candidates.append(cfg)
    for c in candidates:
        stages = Stages.from_config(c)
        if stages.store.count() > 0:
            log.info("mining hard negatives from collection %s", c.collection)
            return stages
        stages.close()
    return None


def load_training_data(
    cfg: PipelineConfig,
    *,
    pairs_file: Path | None = None,
    corpus: Path | None = None,
    queries: Path | None = None,
    qrels: Path | None = None,
    negatives_per_query: int = 3,
    max_queries: int | None = None,
    seed: int = 0,
    exclude_queries: Collection[str] = (),
    random_per_query: int = 0,
) -> TrainingData:
    """Labeled pairs plus negatives, from `pairs_file` or from BEIR `corpus`/`queries`/`qrels`.

    `exclude_queries` (query ids for BEIR input, query texts for a pairs file) are held out for the deployment
    gate: none of their labels reach training. `random_per_query` random corpus documents per query are added
    as negatives too (BEIR input): hard negatives alone teach a model only the top of the ranking, and SciFact's
    unjudged top hits are often relevant, so easy negatives keep the scale honest.
    """
    beir = (corpus, queries, qrels)
    if pairs_file is None and not all(beir):
        raise InputError(
            "give either --pairs FILE (JSONL of query, passage, label) or all of --corpus, --queries "
            "and --qrels"
        )
    if pairs_file is not None and any(beir):
        raise InputError("give either --pairs or --corpus/--queries/--qrels, not both")
    rng = random.Random(seed)
    doc_ids: dict[tuple[str, str], str] = {}
    pool: list[tuple[str, str]] = []
    if pairs_file is not None:
        labeled = [p for p in load_pairs_jsonl(pairs_file) if p.query not in exclude_queries]
        qs = sorted({p.query for p in labeled})
        if max_queries is not None and len(qs) > max_queries:
            keep = set(rng.sample(qs, max_queries))
            labeled = [p for p in labeled if p.query in keep]
        data: dict[str, Any] = {"pairs_file": str(pairs_file)}
    else:
        from ragcli.eval.beir import load_corpus, load_qrels, load_queries

        assert corpus is not None and queries is not None and qrels is not None
        docs, qtexts, judged = load_corpus(corpus), load_queries(queries), load_qrels(qrels)
        qids = sorted(q for q in judged if q in qtexts and q not in exclude_queries)
        if max_queries is not None and len(qids) > max_queries:
            qids = sorted(rng.sample(qids, max_queries))
        labeled = []
        for qid in qids:
            for doc_id, grade in judged[qid].items():
                doc = docs.get(doc_id)
                if doc is None:
                    continue
                labeled.append(Pair(qtexts[qid], doc.full_text, 1.0 if grade > 0 else 0.0))
                doc_ids[(qtexts[qid], doc.full_text)] = doc_id
        pool = [(d.id, d.full_text) for d in docs.values()]
        data = {
            "corpus": str(corpus),
            "queries": str(queries),
            "qrels": str(qrels),
            "train_queries": len(qids),
        }
        if not any(p.label > 0.5 for p in labeled):
            raise InputError(f"{qrels}: no judged query-document pair found in {corpus} and {queries}")
    stages = _index_stages(cfg, corpus) if negatives_per_query > 0 else None
    try:
        pairs, source = build_training_pairs(
            labeled,
            searcher=_searcher(stages) if stages is not None else None,
            negatives_per_query=negatives_per_query,
            doc_ids=doc_ids,
            pool=pool,
            seed=seed,
        )
    finally:
        if stages is not None:
            data["mined_from"] = stages.config.collection
            stages.close()
    data["negatives_per_query"] = negatives_per_query
    if random_per_query > 0 and pool:
        from ragcli.train.reranker_training import _positives_of, random_negatives

        positives = {
            q: [(doc_ids.get((q, t), ""), t) for _, t in pos] for q, pos in _positives_of(labeled).items()
        }
        pairs += random_negatives(positives, pool, per_query=random_per_query, seed=seed + 1)
        source += f" + {random_per_query} random per query"
        data["random_negatives_per_query"] = random_per_query
    return TrainingData(pairs, source, data)
