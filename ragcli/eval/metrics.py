"""Ranking metrics with BEIR's definitions (those of `pytrec_eval`, which BEIR uses).

- nDCG@k: DCG = sum over the top k of grade / log2(rank + 1), rank from 1, with the qrels grade as the gain
  (trec_eval's linear gain); the ideal DCG sorts all of the query's judged grades. A query with no relevant
  document scores 0.
- Recall@k: relevant documents (grade > 0) in the top k / all relevant documents of the query.
- MRR@k: 1 / rank of the first relevant document in the top k, 0 if none.

Scores are averaged over the queries that have qrels; a query the system returned nothing for counts as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Sequence[str]]
"""query id -> document ids, best first."""


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    dcg = sum(
        grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if grades.get(doc, 0) > 0
    )
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in grades.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if grades.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def unique_in_order(ids: Sequence[str]) -> list[str]:
    """Document ids with repeats removed (several chunks of one document count once, at its best rank)."""
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def evaluate(
    run: Run,
    qrels: Mapping[str, Mapping[str, int]],
    *,
    ndcg_k: Sequence[int] = (10,),
    recall_k: Sequence[int] = (10, 100),
    mrr_k: Sequence[int] = (10,),
) -> dict[str, float]:
    """Mean metrics over the queries of `qrels`: {"ndcg@10": .., "recall@10": .., "mrr@10": .., ...}."""
    queries = list(qrels)
    if not queries:
        return {}
    out: dict[str, float] = {}
    for name, fn, ks in (
        ("ndcg", ndcg_at_k, ndcg_k),
        ("recall", recall_at_k, recall_k),
        ("mrr", mrr_at_k, mrr_k),
    ):
        for k in ks:
            total = sum(fn(unique_in_order(run.get(q, ())), qrels[q], k) for q in queries)
            out[f"{name}@{k}"] = total / len(queries)
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation, as numpy's default."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
