"""The int8 embedding back-end (`embedder.backend: openvino_int8`) against ONNX Runtime fp32 on all of SciFact:
vector agreement, retrieval quality and speed, side by side in one process.

    .venv/bin/python benchmarks/embed_int8_quality.py [--data DIR] [--docs N]

Both embedders are ragcli's own (`SentenceTransformerEmbedder`) in a fresh home, so the int8 model is quantized
the way a user's first ingest quantizes it: on the first 256 texts it is given (here the corpus in file order;
half calibrate, half check). Reports the one-time quantization, the minimum and mean cosine between the int8 and
fp32 vector of every document, dense nDCG@10 and Recall@10 on the test queries (qrels/test.tsv) with each
embedder's own document and query vectors, and the documents' embedding time, the two back-ends alternating in
chunks of 512 documents so load changes hit both alike. Writes the `int8 embeddings (SciFact)` section of
benchmarks/results/ingest.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import default_data, header, loadavg, write_section


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--docs", type=int, default=0, help="first N documents only (0: all)")
    args = ap.parse_args()
    os.environ["RAGCLI_HOME"] = tempfile.mkdtemp(prefix="ragcli-int8-")
    from ragcli.eval.beir import load_corpus, load_qrels, load_queries
    from ragcli.eval.metrics import ndcg_at_k, recall_at_k
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.train.exact_ranking import dense_rank

    load0 = loadavg()
    src = args.data / "scifact_beir"
    corpus = load_corpus(src / "corpus.jsonl")
    ids = list(corpus)[: args.docs or None]
    texts = [corpus[d].full_text for d in ids]
    queries = load_queries(src / "queries.jsonl")
    qrels = load_qrels(src / "qrels" / "test.tsv")
    qids = sorted(q for q in qrels if q in queries)
    embedders = {
        "onnx (fp32)": SentenceTransformerEmbedder(backend="onnx"),
        "openvino_int8": SentenceTransformerEmbedder(backend="openvino_int8"),
    }
    t0 = time.perf_counter()
    embedders["openvino_int8"].embed(
        texts[:256]
    )  # the one-time quantization, as a first ingest batch does it
    quantize_s = time.perf_counter() - t0
    embedders["onnx (fp32)"].embed(texts[:64])  # its session loaded before the clock too
    vecs: dict[str, list[np.ndarray]] = {k: [] for k in embedders}
    secs = dict.fromkeys(embedders, 0.0)
    tokens = 0
    for start in range(0, len(texts), 512):
        part = texts[start : start + 512]
        for name, emb in embedders.items():
            t = time.perf_counter()
            out = emb.embed(part)
            secs[name] += time.perf_counter() - t
            vecs[name].append(out.vectors)
        tokens += out.usage.input_tokens
    doc_vecs = {k: np.vstack(v) for k, v in vecs.items()}
    cos = (doc_vecs["openvino_int8"] * doc_vecs["onnx (fp32)"]).sum(1)
    rows = []
    for name, emb in embedders.items():
        qv = emb.embed([queries[q] for q in qids]).vectors
        ranked = dense_rank(qv, doc_vecs[name], ids, 10)
        ndcg = np.mean(
            [ndcg_at_k([d for d, _ in r], qrels[q], 10) for q, r in zip(qids, ranked, strict=True)]
        )
        rec = np.mean(
            [recall_at_k([d for d, _ in r], qrels[q], 10) for q, r in zip(qids, ranked, strict=True)]
        )
        rows.append(
            f"| {name} | {ndcg:.4f} | {rec:.4f} | {secs[name]:.1f} | {tokens / secs[name]:.0f} | "
            f"{secs['onnx (fp32)'] / secs[name]:.2f}x |"
        )
    card = next(Path(os.environ["RAGCLI_HOME"]).rglob("model.int8.json")).read_text()
    body = (
        header(f"python benchmarks/embed_int8_quality.py{f' --docs {args.docs}' if args.docs else ''}")
        + f"- load average before / after: {load0} / {loadavg()}\n"
        + f"- documents: {len(ids)} ({tokens} MiniLM tokens), test queries: {len(qids)}\n"
        + f"- one-time quantization (nncf, 128 texts calibrate, 128 check) and first batch: {quantize_s:.1f} s\n"
        + f"- int8 vs fp32 cosine over every document: min **{cos.min():.4f}**, mean {cos.mean():.5f}, "
        + f"share below 0.99: {(cos < 0.99).mean():.2%}\n\n"
        + "| back-end | nDCG@10 (test) | Recall@10 | documents' embedding s | tokens/s | speed vs fp32 |\n"
        + "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        + "\n".join(rows)
        + "\n\nThe int8 model's card (its own check on the texts it was quantized on):\n\n```json\n"
        + card
        + "```\n"
    )
    print(body)
    write_section("int8 embeddings (SciFact)", body)


if __name__ == "__main__":
    main()
