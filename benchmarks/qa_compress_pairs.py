"""End to end at a quarter of LlamaIndex's tokens: compression with and without the block pair prior.

    .venv/bin/python benchmarks/qa_compress_pairs.py [--data ../shared/data] [--caps 96 128 160] [--out F.md]
        [--unit-words 25] [--no-plain] [--second-hop 4]

The real query pipeline retrieves once per question (`qa_adaptive_calibrate.retrieve_all`: the pooled
corpus, the `lean` preset with hybrid retrieval, top 12); then the same hits are packed whole (1,024 tokens)
and compressed to each context cap by `SentenceCompressor` with the retriever's scores as block scores:
- without the pair prior (`pair_weight=0`, the compressor before the pair prior);
- with the packaged pair model (trained on all HotpotQA questions: in-sample for HotpotQA);
- HotpotQA only: with a model that never saw the question (the span-answer questions shuffled into two folds,
  seed 0; each fold compressed with a model trained on the other fold plus the yes/no questions, as in
  `compression_pairs.py`).
`--second-hop N` also retrieves with the pipeline's second search (`retrieval.second_hop: N`) and compresses
the top 12 + N, packed whole at 2,048 tokens. `--unit-words 60 25` runs the compressors once per longest unit (`max_unit_words`: longer sentences are split
at commas and parentheses; 60 was the default before 2026-12-03, 25 after), each with pair models featurized the
same way. Beside them, `lean`'s own sentence packer on the top 8 at budgets 128 and 160. Scored like
`qa_baselines.py`: answer in context (question removed), cl100k tokens of the whole prompt. All 261 HotpotQA
questions (218 with a span answer) and NQ's first 300.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import compression_pairs  # noqa: E402
from qa_adaptive_calibrate import retrieve_all, sweep  # noqa: E402
from qa_baselines import harness  # noqa: E402
from trained_common import emit  # noqa: E402

from ragcli.generation.compression_types import Compressed, CompressionTarget  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402

SPEC = "hybrid=lean,ingest.sparse=true,retrieval.mode=hybrid,retrieval.top_k=12"


class PerQuestion:
    """Compresses each question with the compressor whose pair model never saw it."""

    def __init__(
        self,
        by_question: dict[str, SentenceCompressor],
        fallback: SentenceCompressor,
        folds: dict[str, int] | None = None,
    ) -> None:
        self.by_question = by_question
        self.fallback = fallback
        self.folds = folds or {}
        """Each question's fold, where the compressors come from cross-validation."""

    def compress(
        self,
        question: str,
        text: str,
        target: CompressionTarget,
        *,
        block_scores: Any = None,
        block_similarity: Any = None,
    ) -> Compressed:
        # keyed by the stripped question: ten HotpotQA questions end in a space in one file and not the other
        comp = self.by_question.get(question.strip(), self.fallback)
        return comp.compress(
            question, text, target, block_scores=block_scores, block_similarity=block_similarity
        )


def compress_grid(
    variants: list[tuple[str, Any]], caps: list[int], *, top_k: int, budget: int
) -> list[dict[str, Any]]:
    """`sweep` settings: the top `top_k` hits packed whole at `budget` tokens, then each variant's compressor to
    each context cap."""
    return [
        {
            "select": False,
            "rel": None,
            "budget": budget,
            "ratio": None,
            "tokens": cap,
            "cap": cap,
            "top_k": top_k,
            "compressor": comp,
            "name": name,
        }
        for name, comp in variants
        for cap in caps
    ]


def fold_slices(n: int, k: int) -> list[slice]:
    """`k` contiguous folds of `n` shuffled items (for k = 2: the first n // 2, then the rest)."""
    return [slice(n * f // k, n * (f + 1) // k) for f in range(k)]


def fold_compressors(data: Path, count: Any, unit_words: int = 25, seed: int = 0, k: int = 2) -> PerQuestion:
    """A compressor per HotpotQA span question whose pair model never saw it: the span questions shuffled (`seed`)
    into `k` folds, each fold's model trained on the other folds plus the yes/no questions (never scored)."""
    rows = compression_pairs.load(data)
    compression_pairs.featurize(SentenceCompressor(count, max_unit_words=unit_words), rows)
    spans = [r for r in rows if r["span"]]
    yes_no = [r for r in rows if not r["span"]]
    order = list(spans)
    random.Random(seed).shuffle(order)
    folds = [order[sl] for sl in fold_slices(len(order), k)]
    by_question: dict[str, SentenceCompressor] = {}
    fold_of: dict[str, int] = {}
    for f, test in enumerate(folds):
        model = compression_pairs.train(
            [r for g, other in enumerate(folds) if g != f for r in other] + yes_no
        )
        comp = SentenceCompressor(count, pair_model=model, max_unit_words=unit_words)
        by_question.update({r["question"].strip(): comp for r in test})
        fold_of.update({r["question"].strip(): f for r in test})
    # yes/no questions are not scored (no span answer); the packaged model covers them
    return PerQuestion(by_question, SentenceCompressor(count, max_unit_words=unit_words), fold_of)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--caps", nargs="+", type=int, default=[96, 128, 160])
    ap.add_argument("--nq-limit", type=int, default=300)
    ap.add_argument("--unit-words", nargs="+", type=int, default=[25], help="longest unit before splitting")
    ap.add_argument("--no-plain", action="store_true", help="skip the compressors without the pair prior")
    ap.add_argument(
        "--second-hop", type=int, default=0, help="also retrieve with retrieval.second_hop=N (0: not run)"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    count, cache = harness()
    ns = argparse.Namespace(data=args.data, limit=None, nq_limit=args.nq_limit, split="all")
    lines = [
        "| set | context | cap / budget | answer in context | prompt tokens |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for set_name in ("hotpotqa", "nq"):
        run = retrieve_all(set_name, SPEC, ns, cache)
        llm_count = run["stages"].llm.count_tokens
        variants: list[tuple[str, Any]] = []
        for w in args.unit_words:
            tag = f", units <= {w} words" if len(args.unit_words) > 1 else ""
            if not args.no_plain:
                variants.append(
                    (
                        f"whole top 12, compressed, no pair prior{tag}",
                        SentenceCompressor(llm_count, pair_weight=0.0, max_unit_words=w),
                    )
                )
            variants.append(
                (
                    f"whole top 12, compressed, packaged pair model{tag}",
                    SentenceCompressor(llm_count, max_unit_words=w),
                )
            )
            if set_name == "hotpotqa":
                variants.append(
                    (
                        f"whole top 12, compressed, pair model from the other fold{tag}",
                        fold_compressors(Path(args.data), llm_count, w),
                    )
                )
        grid = compress_grid(variants, args.caps, top_k=12, budget=1024) + [
            {
                "select": True,
                "rel": None,
                "budget": b,
                "ratio": None,
                "top_k": 8,
                "cap": b,
                "name": "lean's sentence packer, top 8",
            }
            for b in (128, 160)
        ]
        for r in sweep(run, grid, count):
            lines.append(
                f"| {set_name} | {r['name']} | {r['cap']} | {100 * r['aic']:.1f} % | {r['tokens']:.0f} |"
            )
            print(lines[-1], flush=True)
        if args.second_hop:
            # the pipeline's own second search (`retrieval.second_hop`): its hits follow the first 12, all packed
            # whole (2,048 tokens hold 16 paragraphs) and compressed to the cap
            run["stages"].close()  # the embedded engine opens a collection folder once
            hop = retrieve_all(set_name, f"{SPEC},retrieval.second_hop={args.second_hop}", ns, cache)
            hop_comp = fold_compressors(Path(args.data), llm_count) if set_name == "hotpotqa" else None
            name = f"top 12 + {args.second_hop} from a second search, compressed" + (
                ", pair model from the other fold" if hop_comp is not None else ", packaged pair model"
            )
            hop_variants = [(name, hop_comp or SentenceCompressor(llm_count))]
            hop_grid = compress_grid(hop_variants, args.caps, top_k=12 + args.second_hop, budget=2048)
            for r in sweep(hop, hop_grid, count):
                lines.append(
                    f"| {set_name} | {r['name']} | {r['cap']} | {100 * r['aic']:.1f} % | {r['tokens']:.0f} |"
                )
                print(lines[-1], flush=True)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
