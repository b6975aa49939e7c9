"""Answer-in-context against prompt tokens: naive RAG baselines, an oracle and ragcli's presets, side by side.

On the HotpotQA (IRCoT format) and NQ-Open files of the shared data, every paragraph of a file is pooled into one
corpus and every pipeline embeds it with the same model (the packaged all-MiniLM-L6-v2 folder):

Every pipeline gets the same documents: one per pooled paragraph, its title line, a blank line, then its text.

1. LlamaIndex naive RAG at its defaults: `SentenceSplitter()`, `VectorStoreIndex`, `similarity_top_k` 2 and 5;
   the prompt counted is its default QA template (`DEFAULT_TEXT_QA_PROMPT`) filled with the retrieved nodes as
   its response synthesizer formats them (`MetadataMode.LLM`, joined by blank lines). No LLM is called.
2. The common LangChain recipe: `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`, top-4 by
   cosine (numpy, same MiniLM vectors), stuffed into the classic RAG prompt.
3. An oracle that packs only the gold supporting paragraphs into ragcli's prompt (the floor on tokens).
4. ragcli's presets at several context budgets, through `ragcli.eval.qa_eval.evaluate_qa` (the real query
   pipeline, stopped before the LLM call).

Every prompt is counted with one tokenizer (tiktoken cl100k_base) and priced at one model's input price.
Passage embeddings are cached by exact text under `$RAGCLI_HOME/bench_cache` (computed by the model object each
pipeline uses: LlamaIndex's HuggingFaceEmbedding, sentence-transformers, ragcli's embedder), so an identical text
is embedded once across pipelines and re-runs; index-building time is reported apart from per-query time. Each
question is embedded once (timed) and every pipeline searches with that vector; the measured mean question-embedding
time is added to every pipeline's seconds per query.

5. Variants of the presets (`--variant NAME=PRESET,dotted.key=value,...`, e.g. adaptive context or compression
   settings), measured like the presets; `--split tune|report` keeps the first or second half of the questions,
   so settings are chosen on one half and reported on the other.

Run: `.venv/bin/python benchmarks/qa_baselines.py [--data DIR] [--sets hotpotqa nq] [--nq-limit N]`
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.config import load_config  # noqa: E402
from ragcli.cost.prices import Price, PriceTable  # noqa: E402
from ragcli.eval.qa_data import QADataset, QAItem, load_qa  # noqa: E402
from ragcli.eval.qa_eval import QuestionResult, RunResult, evaluate_qa, score_prompt  # noqa: E402
from ragcli.generation.prompts import build_messages  # noqa: E402
from ragcli.ingest.build import build_embedder  # noqa: E402
from ragcli.resources import embedding_model_dir, offline_env, prepare_tiktoken, ragcli_home  # noqa: E402

log = logging.getLogger("qa_baselines")

LANGCHAIN_RAG_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to answer "
    "the question. If you don't know the answer, just say that you don't know. Use three sentences maximum and "
    "keep the answer concise.\nQuestion: {question} \nContext: {context} \nAnswer:"
)
"""LangChain's widely copied RAG prompt (the `rlm/rag-prompt` hub prompt of its RAG tutorial)."""

SETS = {"hotpotqa": "hotpotqa/questions.jsonl", "nq": "nq_open/questions.jsonl"}


# ---------------------------------------------------------------- shared helpers


class EmbeddingCache:
    """float32 vectors by sha1 of the exact text embedded, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    def get_many(
        self, texts: Sequence[str], embed: Callable[[list[str]], Any], batch: int = 256
    ) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})"
            for key, blob in self._db.execute(q, part):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        by_key = {k: t for k, t in zip(keys, texts, strict=True)}
        if todo:
            log.info("embedding %d texts (%d cached)", len(todo), len(set(keys)) - len(todo))
        for i in range(0, len(todo), batch):
            part = todo[i : i + batch]
            vecs = np.asarray(embed([by_key[k] for k in part]), dtype=np.float32)
            self._db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                [(k, v.tobytes()) for k, v in zip(part, vecs, strict=True)],
            )
            self._db.commit()
            for k, v in zip(part, vecs, strict=True):
                found[k] = v
            log.info("  embedded %d/%d", min(i + batch, len(todo)), len(todo))
        return np.stack([found[k] for k in keys])


class QueryVectors:
    """Each question embedded once; every pipeline then uses the same vector and adds the mean time.

    Embedding a question is the same work in every pipeline (same model, same text), so it is done once, and the
    mean time of embedding one question alone (measured on up to `timed` questions) is added to each pipeline's
    own per-query seconds: the comparison stays fair and the run stays short on a shared 2-core machine.
    """

    def __init__(self, questions: Sequence[str], cache: EmbeddingCache, timed: int = 30) -> None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(embedding_model_dir()), device="cpu")

        def encode(texts: list[str]) -> Any:
            return model.encode(
                texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )

        unique = list(dict.fromkeys(questions))
        encode(["warm up"])
        t0 = time.perf_counter()
        for q in unique[:timed]:
            encode([q])
        self.mean_seconds = (time.perf_counter() - t0) / max(min(len(unique), timed), 1)
        vecs = cache.get_many([f"query: {q}" for q in unique], lambda b: encode([t[7:] for t in b]))
        self.vectors: dict[str, np.ndarray] = dict(zip(unique, vecs, strict=True))
        log.info("%d questions; one alone embeds in %.1f ms", len(unique), 1000 * self.mean_seconds)


class CachedEmbedder:
    """ragcli's configured embedder behind the benchmark's text cache and the shared question vectors."""

    def __init__(self, real: Any, cache: EmbeddingCache, queries: QueryVectors) -> None:
        self.real = real
        self.cache = cache
        self.queries = queries

    @property
    def model_name(self) -> str:
        return str(self.real.model_name)

    @property
    def dim(self) -> int:
        return int(self.real.dim)

    @property
    def max_tokens(self) -> int:
        return int(self.real.max_tokens)

    @property
    def tokenizer(self) -> Any:
        return self.real.tokenizer

    def embed(self, texts: Sequence[str]) -> Any:
        from ragcli.ingest.protocols import Embeddings
        from ragcli.types import Usage

        vecs = self.cache.get_many(texts, lambda batch: self.real.embed(batch).vectors)
        return Embeddings(vecs.astype(np.float32), Usage(usd=0.0))

    def embed_query(self, text: str) -> Any:
        from ragcli.ingest.protocols import Embeddings
        from ragcli.types import Usage

        vec = self.queries.vectors.get(text)
        if vec is None:
            return self.real.embed_query(text)
        return Embeddings(vec[None, :], Usage(usd=0.0))


@dataclass
class Row:
    """One line of the results table."""

    set: str
    name: str
    kind: str  # baseline | oracle | ragcli
    budget: int | None
    questions: int
    answerable: int
    answer_in_context: float
    answer_in_prompt: float
    supporting_recall: float
    mean_tokens: float
    p95_tokens: float
    usd_per_1k: float | None
    seconds_per_query: float
    index_seconds: float | None
    partial: bool = False


def _row(set_name: str, kind: str, run: RunResult, index_seconds: float | None) -> Row:
    return Row(
        set_name,
        run.name,
        kind,
        run.budget_tokens,
        run.questions,
        run.answerable,
        run.answer_in_context,
        run.answer_in_prompt,
        run.supporting_recall,
        run.mean_prompt_tokens,
        run.p95_prompt_tokens,
        run.usd_per_1k_queries,
        run.seconds_per_query,
        index_seconds,
        run.partial,
    )


def _score(
    item: QAItem, ds: QADataset, prompt: str, used: Sequence[str], tokens: int, secs: float
) -> QuestionResult:
    in_ctx, in_prompt, found = score_prompt(item, prompt, ds.paragraphs, used)
    return QuestionResult(
        item.id, in_ctx is not None, in_ctx, in_prompt, found, len(item.supporting), tokens, secs
    )


def _summarize(name: str, rows: list[QuestionResult], price: Price, budget: int | None = None) -> RunResult:
    from ragcli.eval.qa_eval import summarize

    return summarize(name, budget, rows, len(rows), price)


# ---------------------------------------------------------------- baselines


def llamaindex_baseline(
    ds: QADataset,
    items: list[QAItem],
    count: Callable[[str], int],
    price: Price,
    cache: EmbeddingCache,
    queries: QueryVectors,
    top_ks: Sequence[int] = (2, 5),
) -> list[tuple[RunResult, float]]:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.prompts.default_prompts import DEFAULT_TEXT_QA_PROMPT
    from llama_index.core.schema import MetadataMode, QueryBundle
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    # LlamaIndex's defaults are OpenAI's: set both explicitly (no LLM call is made; MockLLM never runs)
    Settings.llm = MockLLM()
    Settings.embed_model = HuggingFaceEmbedding(model_name=str(embedding_model_dir()))
    t0 = time.perf_counter()
    # every pipeline gets the same document: its title line, then its text (as a loader reading a file gives it)
    docs = [Document(text=f"{p.title}\n\n{p.text}", id_=p.id) for p in ds.paragraphs.values()]
    nodes = SentenceSplitter().get_nodes_from_documents(docs)
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    vecs = cache.get_many(texts, lambda b: Settings.embed_model.get_text_embedding_batch(b))
    for node, vec in zip(nodes, vecs, strict=True):
        node.embedding = vec.tolist()  # VectorStoreIndex embeds only nodes without an embedding
    index = VectorStoreIndex(nodes)
    index_s = time.perf_counter() - t0
    log.info("llamaindex: %d nodes from %d paragraphs", len(nodes), len(docs))
    out = []
    for k in top_ks:
        retriever = index.as_retriever(similarity_top_k=k)
        rows = []
        for item in items:
            bundle = QueryBundle(item.question, embedding=queries.vectors[item.question].tolist())
            t0 = time.perf_counter()
            found = retriever.retrieve(bundle)
            context = "\n\n".join(n.node.get_content(metadata_mode=MetadataMode.LLM) for n in found)
            prompt = DEFAULT_TEXT_QA_PROMPT.format(context_str=context, query_str=item.question)
            secs = time.perf_counter() - t0 + queries.mean_seconds
            used = [n.node.ref_doc_id or "" for n in found]
            rows.append(_score(item, ds, prompt, used, count(prompt), secs))
        out.append((_summarize(f"LlamaIndex naive top_k={k}", rows, price), index_s))
    return out


def langchain_baseline(
    ds: QADataset,
    items: list[QAItem],
    count: Callable[[str], int],
    price: Price,
    cache: EmbeddingCache,
    queries: QueryVectors,
    k: int = 4,
) -> tuple[RunResult, float]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedding_model_dir()), device="cpu")

    def embed(texts: list[str]) -> Any:
        return model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    t0 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks: list[tuple[str, str]] = []
    for p in ds.paragraphs.values():
        # a document as a loader gives it: its title line, then its text
        chunks.extend((p.id, c) for c in splitter.split_text(f"{p.title}\n\n{p.text}"))
    matrix = cache.get_many([c for _, c in chunks], embed)
    index_s = time.perf_counter() - t0
    log.info("langchain: %d chunks", len(chunks))
    rows = []
    for item in items:
        t0 = time.perf_counter()
        scores = matrix @ queries.vectors[item.question]
        top = np.argsort(-scores)[:k]
        context = "\n\n".join(chunks[i][1] for i in top)
        prompt = LANGCHAIN_RAG_PROMPT.format(question=item.question, context=context)
        secs = time.perf_counter() - t0 + queries.mean_seconds
        rows.append(_score(item, ds, prompt, [chunks[i][0] for i in top], count(prompt), secs))
    return _summarize(f"LangChain recipe (1000/200, top-{k})", rows, price), index_s


def oracle(ds: QADataset, items: list[QAItem], count: Callable[[str], int], price: Price) -> RunResult:
    """Only the gold paragraphs, numbered, in ragcli's own prompt (system prompt included)."""
    from ragcli.config import DEFAULT_SYSTEM_PROMPT

    rows = []
    for item in items:
        paras = [ds.paragraphs[pid] for pid in item.supporting]
        context = "\n\n".join(f"[{i}] {p.title}\n{p.text}" for i, p in enumerate(paras, 1))
        messages = build_messages(DEFAULT_SYSTEM_PROMPT, context, item.question)
        prompt = "\n".join(m.content for m in messages)
        tokens = sum(count(m.content) for m in messages)
        rows.append(_score(item, ds, prompt, list(item.supporting), tokens, 0.0))
    return _summarize("Oracle (gold paragraphs only)", rows, price)


# ---------------------------------------------------------------- report


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[Row]) -> str:
    head = (
        "| pipeline | budget | questions (answerable) | answer in context | (incl. question) | supporting recall "
        "| mean prompt tokens | p95 tokens | $ / 1k queries | s / query | index s |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r.name}{' (PARTIAL)' if r.partial else ''} | {r.budget if r.budget is not None else ('config' if r.kind == 'ragcli' else '-')} "
            f"| {r.questions} ({r.answerable}) | {100 * r.answer_in_context:.1f} % | {100 * r.answer_in_prompt:.1f} % "
            f"| {100 * r.supporting_recall:.1f} % | {r.mean_tokens:.0f} | {r.p95_tokens:.0f} "
            f"| {_fmt(r.usd_per_1k, '.4f')} | {r.seconds_per_query:.3f} | {_fmt(r.index_seconds, '.0f')} |"
        )
    return "\n".join(lines)


def goal_check(rows: list[Row]) -> list[str]:
    """Where ragcli stands against the goal: <= 1/4 of the best naive baseline's tokens at >= its quality."""
    out: list[str] = []
    naive = [r for r in rows if r.kind == "baseline"]
    orc = next((r for r in rows if r.kind == "oracle"), None)
    ours = [r for r in rows if r.kind == "ragcli"]
    if not naive or not ours:
        return out
    best = max(naive, key=lambda r: (r.answer_in_context, -r.mean_tokens))
    out.append(
        f"- Best naive baseline by answer-in-context: **{best.name}**, {100 * best.answer_in_context:.1f} % "
        f"at {best.mean_tokens:.0f} tokens (goal: <= {best.mean_tokens / 4:.0f} tokens at >= "
        f"{100 * best.answer_in_context:.1f} %)."
    )
    ok = [r for r in ours if r.answer_in_context >= best.answer_in_context]
    if ok:
        cheapest = min(ok, key=lambda r: r.mean_tokens)
        ratio = cheapest.mean_tokens / best.mean_tokens
        verdict = "meets" if ratio <= 0.25 else "misses"
        out.append(
            f"- Cheapest ragcli run at >= that quality: **{cheapest.name} budget {cheapest.budget}**, "
            f"{100 * cheapest.answer_in_context:.1f} % at {cheapest.mean_tokens:.0f} tokens = "
            f"{100 * ratio:.0f} % of the baseline's tokens: {verdict} the 1/4 goal."
        )
    else:
        top = max(ours, key=lambda r: r.answer_in_context)
        out.append(
            f"- No ragcli run reaches that quality; the best is **{top.name} budget {top.budget}** at "
            f"{100 * top.answer_in_context:.1f} % with {top.mean_tokens:.0f} tokens: misses the goal."
        )
    at_quarter = [r for r in ours if r.mean_tokens <= best.mean_tokens / 4]
    if at_quarter:
        r = max(at_quarter, key=lambda r: r.answer_in_context)
        out.append(
            f"- Best ragcli run within 1/4 of the baseline's tokens: **{r.name} budget {r.budget}**, "
            f"{100 * r.answer_in_context:.1f} % at {r.mean_tokens:.0f} tokens "
            f"({100 * (r.answer_in_context - best.answer_in_context):+.1f} points vs the baseline)."
        )
    if orc is not None:
        near = [r for r in ours if r.mean_tokens <= 2 * orc.mean_tokens]
        if near:
            r = max(near, key=lambda r: r.answer_in_context)
            out.append(
                f"- Oracle: {orc.mean_tokens:.0f} tokens ({100 * orc.answer_in_context:.1f} %). Best ragcli "
                f"run within 2x of its tokens: **{r.name} budget {r.budget}**, "
                f"{100 * r.answer_in_context:.1f} % at {r.mean_tokens:.0f} tokens."
            )
        else:
            out.append(f"- Oracle: {orc.mean_tokens:.0f} tokens; no ragcli run is within 2x of it.")
    return out


def plot(rows: list[Row], path: Path, title: str) -> None:
    from ragcli.eval.plot import Series, plot_tradeoff

    curves: dict[str, list[Row]] = {}
    for r in rows:
        if r.kind == "ragcli":
            curves.setdefault(r.name, []).append(r)
    series = [
        Series(
            f"ragcli {n}",
            [r.mean_tokens for r in rs],
            [r.answer_in_context for r in rs],
            [str(r.budget) for r in rs],
        )
        for n, rs in curves.items()
    ]
    points = [Series(r.name, [r.mean_tokens], [r.answer_in_context]) for r in rows if r.kind != "ragcli"]
    plot_tradeoff(path, series, points, title=title)


def machine() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines()
        model = next(
            (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model name")), "unknown CPU"
        )
    except OSError:
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def commit() -> str:
    r = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return r.stdout.strip() or "unknown"


# ---------------------------------------------------------------- main


def tune_half_args(description: str, name_prefix: str) -> argparse.Namespace:
    """The command line of a script that trains on one set's tune half: --data, --set, --limit, --nq-limit, --name
    (default `<name_prefix>-<set>`)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", default=os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--set", choices=sorted(SETS), required=True)
    ap.add_argument("--limit", type=int, default=None, help="HotpotQA questions (as the harness's --limit)")
    ap.add_argument("--nq-limit", type=int, default=300, help="NQ questions (as the harness's --nq-limit)")
    ap.add_argument("--name", default=None, help=f"default: {name_prefix}-<set>")
    args = ap.parse_args()
    args.name = args.name or f"{name_prefix}-{args.set}"
    return args


def load_split(
    path: Path, set_name: str, limit: int | None, nq_limit: int | None, split: str
) -> tuple[QADataset, list[QAItem]]:
    """A QA set and the questions every QA benchmark asks of it: the file's first `limit` (`nq_limit` for NQ),
    then their first half (`tune`), their second half (`report`) or all of them (`all`)."""
    ds = load_qa(path, "hotpotqa" if set_name == "hotpotqa" else "nq")
    cap = nq_limit if set_name == "nq" else limit
    items = ds.questions[:cap] if cap else ds.questions
    half = len(items) // 2
    if split == "tune":
        items = items[:half]
    elif split == "report":
        items = items[half:]
    return ds, items


def run_set(
    set_name: str,
    path: Path,
    args: argparse.Namespace,
    count: Callable[[str], int],
    price: Price,
    cache: EmbeddingCache,
) -> list[Row]:
    ds, items = load_split(path, set_name, args.limit, args.nq_limit, args.split)
    log.info("%s: %d questions, %d pooled paragraphs", set_name, len(items), len(ds.paragraphs))
    args.described[set_name] = (
        f"{len(items)} of the file's {len(ds.questions)} questions (split: {args.split}), asked against all "
        f"{len(ds.paragraphs)} paragraphs of the file pooled into one corpus"
    )
    rows: list[Row] = []
    index_s: float | None
    queries = QueryVectors([q.question for q in items], cache)
    if "oracle" in args.pipelines:
        rows.append(_row(set_name, "oracle", oracle(ds, items, count, price), None))
    if "llamaindex" in args.pipelines:
        for run, li_s in llamaindex_baseline(ds, items, count, price, cache, queries, args.llamaindex_top_k):
            rows.append(_row(set_name, "baseline", run, li_s))
    if "langchain" in args.pipelines:
        run, index_s = langchain_baseline(ds, items, count, price, cache, queries)
        rows.append(_row(set_name, "baseline", run, index_s))
    runs = [(p, load_config(p)) for p in args.presets] + [parse_variant(v) for v in args.variant]
    for preset, cfg in runs:
        t0 = time.perf_counter()
        report = evaluate_qa(
            replace(ds, questions=list(items)),  # the split's questions (evaluate_qa takes the first `limit`)
            cfg,
            args.budgets,
            limit=len(items),
            pricing=price,
            count_tokens=count,
            tokenizer_name="cl100k_base",
            name=preset,
            stages={"embedder": CachedEmbedder(build_embedder(cfg.embedder), cache, queries)},
        )
        log.info("ragcli %s done in %.0fs (index %s)", preset, time.perf_counter() - t0, report.index)
        index_s = report.index.seconds if report.index else None
        for run in report.runs:
            run.seconds_per_query += queries.mean_seconds  # the shared, once-measured question embedding
            rows.append(_row(set_name, "ragcli", run, index_s))
    return rows


def parse_variant(spec: str) -> tuple[str, Any]:
    """`NAME=PRESET,dotted.key=value,...` -> (NAME, the preset's config with those keys set; values read as JSON)."""
    name, _, rest = spec.partition("=")
    preset, *sets = rest.split(",")
    if not name or not preset:
        raise SystemExit(f"--variant {spec!r}: expected NAME=PRESET,dotted.key=value,...")
    cfg = load_config(preset)
    data = cfg.model_dump(mode="json")
    for item in sets:
        key, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *path, leaf = key.split(".")
        node = data
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return name, type(cfg).model_validate(data)


def _budget(raw: str) -> int | None:
    return None if raw == "config" else int(raw)


def harness() -> tuple[Callable[[str], int], EmbeddingCache]:
    """Logging, the offline resources, the cl100k counter every prompt is scored with, and the question-vector
    cache `qa_baselines.py` shares (under the home)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    offline_env()
    prepare_tiktoken()
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    return count, EmbeddingCache(ragcli_home() / "bench_cache" / "embeddings.sqlite")


def main(argv: list[str] | None = None) -> int:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data, help="the shared data folder (env RAGCLI_DATA)")
    ap.add_argument("--sets", nargs="+", default=["hotpotqa", "nq"], choices=sorted(SETS))
    ap.add_argument("--limit", type=int, default=None, help="HotpotQA questions (default all)")
    ap.add_argument(
        "--nq-limit", type=int, default=None, help="NQ questions (default all; the corpus stays whole)"
    )
    ap.add_argument(
        "--pipelines",
        nargs="*",
        default=["oracle", "llamaindex", "langchain"],
        choices=["oracle", "llamaindex", "langchain"],
    )
    ap.add_argument(
        "--llamaindex-top-k", nargs="+", type=int, default=[2, 5], help="LlamaIndex's similarity_top_k"
    )
    ap.add_argument("--presets", nargs="*", default=["local", "lean"])
    ap.add_argument(
        "--budgets", nargs="+", type=_budget, default=[128, 256, 512, 1024], help="ints, or `config`"
    )
    ap.add_argument("--variant", action="append", default=[], help="NAME=PRESET,dotted.key=value,...")
    ap.add_argument(
        "--split", choices=["all", "tune", "report"], default="all", help="halves of the questions"
    )
    ap.add_argument("--model", default="gpt-4o-mini", help="price every prompt at this model's input price")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "qa.md"))
    args = ap.parse_args(argv)
    args.described = {}
    count, cache = harness()
    price = PriceTable.load().price(args.model)
    if price is None:
        raise SystemExit(f"no price for {args.model!r} in ragcli's price table")
    out = Path(args.out)
    started = datetime.now(UTC)
    all_rows: list[Row] = []
    sections = []
    for set_name in args.sets:
        rows = run_set(set_name, Path(args.data) / SETS[set_name], args, count, price, cache)
        all_rows.extend(rows)
        png = out.parent / f"qa_{set_name}.png"
        plot(rows, png, f"{set_name}: cl100k prompt tokens vs answer-in-context")
        sections.append((set_name, rows, png))
    cmd = "python benchmarks/qa_baselines.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(out, sections, args, price, started, cmd)
    (out.parent / "qa.json").write_text(json.dumps([asdict(r) for r in all_rows], indent=1))
    return 0


def write_report(
    out: Path,
    sections: list[tuple[str, list[Row], Path]],
    args: argparse.Namespace,
    price: Price,
    started: datetime,
    cmd: str,
) -> None:
    from ragcli.eval.qa_eval import versions

    lines = [
        "# QA cost-quality: naive RAG baselines, oracle, ragcli presets",
        "",
        f"- Date: {started.isoformat(timespec='minutes')} (took {(datetime.now(UTC) - started).seconds // 60} min)",
        f"- Commit: {commit()} (plus this working tree)",
        f"- Machine: {machine()}; shared by concurrent jobs of other engineers, so seconds are noisy upper bounds",
        f"- Command: `{cmd.strip()}`",
        "- Embeddings: the packaged all-MiniLM-L6-v2 folder for every pipeline; tokens: tiktoken cl100k_base for every "
        f"prompt; dollars: {price.model} input price (${price.input}/M tokens, {price.source} table), no output",
        f"- Versions: {json.dumps(versions())}",
        "- answer in context: a SQuAD-normalised gold answer occurs (whole words) in the normalised final prompt with "
        "the question text removed; '(incl. question)' keeps it in. Yes/no questions are left out of both.",
        "- supporting recall: gold paragraphs whose text is in the prompt or whose chunk was retrieved/cited.",
        "- Documents: one per pooled paragraph (title line, blank line, text) for every pipeline. ragcli indexes them "
        "with its own chunker, embedder and Qdrant edge store (`ragcli/eval/qa_index.py`) and answers through the "
        "real query pipeline with `no_answer=True`; its budgets are context budgets in the pipeline LLM's tokens "
        "(SmolLM2's tokenizer for `local` and `lean`), while every number here is counted in cl100k.",
        "- s / query: the mean time of embedding one question alone (measured once, shared) + each pipeline's "
        "own retrieval, packing and prompt building; no LLM. index s: chunking + embedding + indexing the "
        "pooled corpus (0-ish when the embeddings came from the cache of an earlier run).",
        "",
    ]
    for set_name, rows, png in sections:
        lines += [
            f"## {set_name}",
            "",
            f"{args.described.get(set_name, '')}.",
            "",
            table(rows),
            "",
            *goal_check(rows),
            "",
            f"![{set_name}]({png.name})",
            "",
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
