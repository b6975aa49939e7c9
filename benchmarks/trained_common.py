"""Shared pieces of the issue-15 benchmarks: machine facts, a cache, the base encoder pass with token vectors,
late-interaction (MaxSim) scoring, a small logistic regression, and cross-encoder training/scoring."""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The parser these benchmarks share: `--data`, `--home` (their models and caches, kept between runs) and
    `--out` (results/retrieval_trained.md); each script adds its own options."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--home", default=str(Path("~/.ragcli-bench").expanduser()))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "retrieval_trained.md"))
    return ap


def enter_home(args: argparse.Namespace) -> Path:
    """Point ragcli at `--home`, offline (before any model loads); returns the home."""
    os.environ["RAGCLI_HOME"] = args.home
    from ragcli.resources import offline_env

    offline_env()
    return Path(args.home)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), "?")
    except OSError:
        name = "?"
    return f"{name}, {os.cpu_count()} cores"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
    ).stdout.strip()


def emit(lines: list[str], out: Path | None) -> None:
    """Print a results table's markdown lines and, given `out`, write them there too."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        out.write_text(text, encoding="utf-8")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cache_path(home: Path, name: str, suffix: str = ".npy") -> Path:
    d = home / "bench-cache"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}{suffix}"


def replace_section(path: Path, key: str, body: str) -> None:
    """Write `body` between `<!-- key:start -->` and `<!-- key:end -->` in `path`, keeping other sections."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{start}\n{body}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
    path.write_text(new, encoding="utf-8")


def base_encode(
    path: Path, texts: Sequence[str], *, tokens: bool = False, only: Any = None
) -> dict[str, Any]:
    """Sentence vectors (mean pooling + L2, as all-MiniLM-L6-v2 defines them) and, with `tokens`, every text's
    L2-normalised token vectors (fp16, concatenated, with offsets): one forward pass gives both. Cached."""
    import numpy as np

    path = path.with_suffix(".npz")
    if path.is_file():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ragcli.resources import embedding_model_dir

    folder = str(embedding_model_dir())
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    lengths = [len(x) for x in tok(list(texts), truncation=True, max_length=256)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    vecs = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    per: list[Any] = [None] * len(texts)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            enc = tok(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="pt"
            )
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            vecs[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            if tokens:
                hn = torch.nn.functional.normalize(h, dim=-1)
                for j, i in enumerate(idx):
                    per[i] = hn[j, : int(enc["attention_mask"][j].sum())].numpy().astype(np.float16)
            if start % 640 == 0:
                print(f"  encode {start}/{len(texts)} {time.perf_counter() - t0:.0f}s", flush=True)
    out: dict[str, Any] = {"vectors": vecs}
    if tokens:
        out["off"] = np.cumsum([0] + [len(p) for p in per]).astype(np.int64)
        out["tok"] = np.concatenate(per)
    np.savez(path, **out)
    return out


def late_interaction_scores(
    q: dict[str, Any], qi: int, docs: dict[str, Any], rows: Sequence[int], ids: Sequence[str]
) -> dict[str, float]:
    """MaxSim: mean over the query's tokens of the best cosine with any token of the document."""
    import numpy as np

    qt = q["tok"][q["off"][qi] : q["off"][qi + 1]].astype(np.float32)
    out = {}
    for r, d in zip(rows, ids, strict=True):
        dt = docs["tok"][docs["off"][r] : docs["off"][r + 1]].astype(np.float32)
        out[d] = float((qt @ dt.T).max(axis=1).mean())
    return out


def logistic_fit(X: Any, y: Any, l2: float = 1e-2, iters: int = 50) -> Any:
    """L2-regularised logistic regression by Newton steps on standardised features; weights + bias returned in
    the original feature scale."""
    import numpy as np

    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(Z @ w)))
        g = Z.T @ (p - y) + l2 * np.r_[w[:-1], 0]
        H = (Z * (p * (1 - p))[:, None]).T @ Z + l2 * np.eye(len(w))
        w -= np.linalg.solve(H, g)
    coef = w[:-1] / sd
    return np.r_[coef, w[-1] - (w[:-1] * mu / sd).sum()]


def cross_encoder_scores(
    path: Path, queries: dict[str, str], cands: dict[str, list[str]], corpus: Any, max_length: int
) -> dict[str, dict[str, float]]:
    """The trained cross-encoder's scores (0..1) of each query's candidates, through ragcli's reranker class."""
    from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker

    rr = CrossEncoderReranker(str(path), max_length=max_length, batch_size=20)
    out = {}
    t0 = time.perf_counter()
    for n, (q, ids) in enumerate(cands.items(), 1):
        out[q] = dict(zip(ids, rr.score(queries[q], [corpus[d].full_text for d in ids]), strict=True))
        if n % 50 == 0:
            print(
                f"  cross-encoder scored {n}/{len(cands)} queries {time.perf_counter() - t0:.0f}s", flush=True
            )
    return out


def scifact_split(
    data: Path,
) -> tuple[Any, dict[str, str], dict[str, Any], dict[str, Any], list[str], list[str], list[str]]:
    """SciFact's corpus, query texts, train and test qrels, and the seed-0 split of the train queries into fit
    (60 %), fuse (20 %) and gate (20 %) that every trained-retrieval benchmark uses."""
    import random

    from ragcli.eval.beir import load_corpus, load_qrels, load_queries

    src = data / "scifact_beir"
    corpus = load_corpus(src / "corpus.jsonl")
    qtext = load_queries(src / "queries.jsonl")
    test = {q: r for q, r in load_qrels(src / "qrels" / "test.tsv").items() if q in qtext}
    train = {q: r for q, r in load_qrels(src / "qrels" / "train.tsv").items() if q in qtext}
    tids = sorted(train)
    random.Random(0).shuffle(tids)
    n = len(tids)
    return (
        corpus,
        qtext,
        train,
        test,
        tids[: int(0.6 * n)],
        tids[int(0.6 * n) : int(0.8 * n)],
        tids[int(0.8 * n) :],
    )


@dataclass
class HotpotPool:
    """HotpotQA's questions over one pooled corpus of their paragraphs (`title: text`), split as the issue-15
    HotpotQA benchmarks split it: the first `report` questions measured, the rest fit (4/5) and gate (1/5); BM25
    with the store's encoder and the packaged MiniLM's paragraph vectors (cached under the home)."""

    ds: Any
    pids: list[str]
    texts: list[str]
    report_q: list[Any]
    fit_q: list[Any]
    gate_q: list[Any]
    bm: Any
    base: Any
    dvec: Any


def hotpot_pool(data: Path, home: Path, report: int) -> HotpotPool:
    import numpy as np

    from ragcli.eval.qa_data import load_qa
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.retrieval.bm25_sparse_encoder import Bm25SparseEncoder
    from ragcli.train.exact_ranking import Bm25Index

    ds = load_qa(data / "hotpotqa" / "questions.jsonl", "hotpotqa")
    pids = list(ds.paragraphs)
    texts = [f"{ds.paragraphs[p].title}: {ds.paragraphs[p].text}" for p in pids]
    rest = ds.questions[report:]
    cut = len(rest) - len(rest) // 5
    base = SentenceTransformerEmbedder()
    bp = cache_path(home, "hotpot-base-corpus")
    dvec = np.load(bp) if bp.is_file() else base.embed(texts).vectors
    np.save(bp, dvec)
    bm = Bm25Index(pids, texts, Bm25SparseEncoder())
    return HotpotPool(ds, pids, texts, ds.questions[:report], rest[:cut], rest[cut:], bm, base, dvec)


def answer_in_context_rows(
    runs: Mapping[str, Sequence[Sequence[tuple[str, float]]]],
    questions: Sequence[Any],
    budgets: Sequence[int],
    text_of: Mapping[str, str],
    count: Callable[[str], int],
) -> list[str]:
    """The HotpotQA answer-in-context table: per ranking and budget, whole paragraphs in ranked order until the
    budget (tokens by `count`) is full; answer in context over the questions with a non-yes/no answer, mean
    context tokens, and supporting recall@5 over all `questions` (each ranking has one list per question)."""
    import numpy as np

    from ragcli.eval.normalize import answer_in_text, is_yes_no

    scored = [i for i, q in enumerate(questions) if q.answers and not is_yes_no(q.answers)]
    lines = [
        "- packing: whole paragraphs in ranked order until the budget (cl100k tokens) is full; tokens are the "
        "context's, mean per question",
        "",
        "| ranking | budget | answer in context | mean context tokens | supporting recall@5 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, ranked in runs.items():
        recall = np.mean(
            [
                len(set(q.supporting) & {d for d, _ in ranked[i][:5]}) / max(1, len(q.supporting))
                for i, q in enumerate(questions)
            ]
        )
        for budget in budgets:
            hit, toks = 0, []
            for i in scored:
                ctx, used = [], 0
                for d, _ in ranked[i]:
                    n = count(text_of[d])
                    if used + n > budget:
                        break
                    ctx.append(text_of[d])
                    used += n
                toks.append(used)
                hit += answer_in_text(questions[i].answers, "\n".join(ctx))
            lines.append(
                f"| {label} | {budget} | {100 * hit / len(scored):.1f} % | {np.mean(toks):.0f} | {recall:.3f} |"
            )
            print(lines[-1], flush=True)
    return lines
