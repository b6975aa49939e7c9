"""Generation benchmarks: packing and sentence selection on HotpotQA, tokens per prompt part, local LLM speed.

    .venv/bin/python benchmarks/generation_bench.py [--data ../shared/data] [--questions 261] [--skip-llm]

Writes benchmarks/results/generation.md. Answer-in-context: a SQuAD-normalised gold answer occurs in the packed
context (yes/no questions left out). Hits are a question's ~10 HotpotQA paragraphs ranked by BM25 against the
question (a cheap stand-in for the retriever, the same for every row). Tokens: o200k_base (gpt-4o-mini's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import string
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.config import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from ragcli.cost.tokens import counter_for  # noqa: E402
from ragcli.generation.prompts import count_parts  # noqa: E402
from ragcli.generation.sentence_selector import LexicalSentenceSelector  # noqa: E402
from ragcli.generation.token_budget_packer import TokenBudgetPacker  # noqa: E402
from ragcli.types import Chunk, Hit  # noqa: E402


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def load_hotpot(path: Path, limit: int) -> list[dict[str, Any]]:
    items = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            golds = [s for obj in row["answers_objects"] for s in obj.get("spans", [])]
            if not golds or all(normalize(g) in ("yes", "no") for g in golds):
                continue
            items.append({"question": row["question_text"], "golds": golds, "paragraphs": row["contexts"]})
            if len(items) >= limit:
                break
    return items


def hits_for(item: dict[str, Any], selector: LexicalSentenceSelector) -> list[Hit]:
    paras = item["paragraphs"]
    texts = [p["paragraph_text"] for p in paras]
    scores = selector.score(
        item["question"], [p["title"] + " " + t for p, t in zip(paras, texts, strict=True)]
    )
    hits = [
        Hit(
            Chunk(id=f"p{i}", doc_id=str(p["title"]), text=texts[i], source=str(p["title"])), float(scores[i])
        )
        for i, p in enumerate(paras)
    ]
    return sorted(hits, key=lambda h: -h.score)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def bench_packing(items: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    count = counter_for("gpt-4o-mini")
    selector = LexicalSentenceSelector()
    all_hits = [hits_for(it, selector) for it in items]
    variants: list[tuple[str, dict[str, Any], int]] = [
        ("all paragraphs, whole (no budget)", {}, 100_000),
        ("whole chunks, budget 800", {}, 800),
        ("whole chunks, budget 500", {}, 500),
        ("whole chunks, budget 300", {}, 300),
        ("sentence selection, no budget", {"select_sentences": True}, 100_000),
        ("sentence selection, budget 800", {"select_sentences": True}, 800),
        ("sentence selection, budget 500", {"select_sentences": True}, 500),
        (
            "sentence selection without the second hop, budget 500",
            {"select_sentences": True, "expand_query": False},
            500,
        ),
        (
            "sentence selection + 1 neighbour, budget 500",
            {"select_sentences": True, "sentence_neighbors": 1},
            500,
        ),
        ("sentence selection, budget 300", {"select_sentences": True}, 300),
    ]
    rows = [
        "| packing | answer in context | mean tokens | p95 tokens | pack ms p50 | pack ms p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    summary: dict[str, Any] = {}
    for name, kw, budget in variants:
        packer = TokenBudgetPacker(count, **kw)
        found = 0
        tokens: list[float] = []
        ms: list[float] = []
        for it, hits in zip(items, all_hits, strict=True):
            t0 = time.perf_counter()
            ctx = packer.pack(it["question"], hits, budget)
            ms.append((time.perf_counter() - t0) * 1000)
            tokens.append(ctx.tokens)
            norm = normalize(ctx.text)
            found += any(normalize(g) and normalize(g) in norm for g in it["golds"])
        aic = found / len(items)
        rows.append(
            f"| {name} | {aic:.1%} | {statistics.mean(tokens):.0f} | {pct(tokens, 0.95):.0f} | "
            f"{pct(ms, 0.5):.1f} | {pct(ms, 0.95):.1f} |"
        )
        summary[name] = {"answer_in_context": aic, "mean_tokens": statistics.mean(tokens)}
        print(rows[-1], flush=True)
    return rows, summary


def reading(summary: dict[str, Any]) -> list[str]:
    """The table in words, computed from its own numbers."""
    base = summary["all paragraphs, whole (no budget)"]
    lines = ["Reading:"]
    for budget in (300, 500, 800):
        w = summary[f"whole chunks, budget {budget}"]
        sel = summary[f"sentence selection, budget {budget}"]
        lines.append(
            f"- budget {budget}: sentence selection keeps the answer in {sel['answer_in_context']:.1%} of questions "
            f"vs {w['answer_in_context']:.1%} for whole chunks, at {base['mean_tokens'] / sel['mean_tokens']:.1f}x "
            "fewer tokens than sending every paragraph."
        )
    free = summary["sentence selection, no budget"]
    lines.append(
        f"- with no budget, sentence selection alone keeps {free['answer_in_context']:.1%} of answers at "
        f"{free['mean_tokens']:.0f} tokens instead of {base['mean_tokens']:.0f}."
    )
    hop = summary["sentence selection, budget 500"]["answer_in_context"]
    nohop = summary["sentence selection without the second hop, budget 500"]["answer_in_context"]
    lines.append(f"- the second hop adds {100 * (hop - nohop):+.1f} points at budget 500.")
    return lines


def prompt_parts(item: dict[str, Any], llm: Any | None) -> list[str]:
    selector = LexicalSentenceSelector()
    hits = hits_for(item, selector)
    counters: list[tuple[str, Any]] = [("o200k_base (gpt-4o-mini)", counter_for("gpt-4o-mini"))]
    if llm is not None:
        counters.append(("SmolLM2 (its own tokenizer)", llm.count_tokens))
    rows = [
        f"Question: {item['question']!r}",
        "",
        "| tokenizer | packing | system | history | context | question | total |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cname, count in counters:
        for pname, kw in (("whole chunks", {}), ("sentence selection", {"select_sentences": True})):
            ctx = TokenBudgetPacker(count, **kw).pack(item["question"], hits, 500)
            p = count_parts(count, DEFAULT_SYSTEM_PROMPT, ctx.text, item["question"])
            rows.append(
                f"| {cname} | {pname}, budget 500 | {p['system']} | {p['history']} | {p['context']} | "
                f"{p['question']} | {p['total']} |"
            )
    return rows


def bench_llm(threads_options: list[int | None], repeats: int = 2) -> tuple[list[str], Any]:
    from ragcli.generation.llama_cpp_llm import LlamaCppLLM
    from ragcli.types import Message

    rows = [
        "| threads | load s | prompt tokens | prefill tok/s | decode tok/s | short answer s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    text = (
        (ROOT / "README.md").read_text(encoding="utf-8")[:2400]
        if (ROOT / "README.md").is_file()
        else "word " * 400
    )
    last: Any = None
    for threads in threads_options:
        llm = LlamaCppLLM(context_window=2048, threads=threads)
        t0 = time.perf_counter()
        llama = llm._load()
        load_s = time.perf_counter() - t0
        prompt_ids = llama.tokenize(text.encode(), add_bos=True)[:400]
        eos = llama.token_eos()
        prefills: list[float] = []
        decodes: list[float] = []
        for _ in range(repeats):  # best of N: the machine is shared, the fastest run is the least disturbed
            llama.reset()  # no KV-cache reuse between runs: each run pays its prefill
            t0 = time.perf_counter()
            first = t_last = 0.0
            pieces = 0
            stream = llama.create_completion(
                prompt_ids, max_tokens=65, temperature=0.0, logit_bias={eos: -1e9}, stream=True
            )
            for _chunk in stream:
                t_last = time.perf_counter()
                if not pieces:
                    first = t_last
                pieces += 1
            prefills.append(len(prompt_ids) / (first - t0))
            decodes.append((pieces - 1) / (t_last - first))
        prefill, decode = max(prefills), max(decodes)
        llama.reset()
        t0 = time.perf_counter()
        llm.complete([Message("user", "What is the capital of France? Answer in one word.")], max_tokens=16)
        short = time.perf_counter() - t0
        label = "default" if threads is None else str(threads)
        rows.append(
            f"| {label} | {load_s:.2f} | {len(prompt_ids)} | {prefill:.0f} | {decode:.0f} | {short:.2f} |"
        )
        print(rows[-1], flush=True)
        last = llm
    return rows, last


def main() -> None:
    default_data = os.environ.get("RAGCLI_DATA") or str(ROOT.parent / "shared" / "data")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data)
    ap.add_argument("--questions", type=int, default=261)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generation.md"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    load_before = os.getloadavg()[0]
    items = load_hotpot(Path(args.data) / "hotpotqa" / "questions.jsonl", args.questions)
    print(f"{len(items)} HotpotQA questions (yes/no left out)", flush=True)
    pack_rows, summary = bench_packing(items)
    llm_rows: list[str] = []
    llm = None
    if not args.skip_llm:
        llm_rows, llm = bench_llm([None, 2])
    part_rows = prompt_parts(items[0], llm)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "# Generation benchmarks",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; commit {commit.strip()}",
        f"- machine: {cpu}, {os.cpu_count()} cores, shared with other engineers' concurrent jobs (timings are noisy; "
        f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end)",
        f"- command: `.venv/bin/python benchmarks/generation_bench.py --questions {args.questions}"
        + (" --skip-llm`" if args.skip_llm else "`"),
        "",
        f"## Packing on HotpotQA ({len(items)} questions, ~10 paragraphs each, yes/no left out)",
        "",
        "Hits: each question's paragraphs ranked by BM25 against the question. Tokens: o200k_base. Answer in "
        "context: a SQuAD-normalised gold answer occurs in the packed text. Sentence selection is the lexical "
        "(BM25 over sentences) selector, no model.",
        "",
        *pack_rows,
        "",
        *reading(summary),
        "",
        "## Tokens per prompt part (first question, default system prompt)",
        "",
        *part_rows,
    ]
    if llm_rows:
        lines += [
            "",
            "## Local LLM: SmolLM2-135M-Instruct Q4_1 under llama-cpp-python (CPU)",
            "",
            "One streamed run: a 400-token prompt (KV cache reset), then 64 more tokens with EOS suppressed. "
            "Prefill: prompt tokens / time to the first token. Decode: tokens after the first / time after it. "
            "Best of 2 runs. Short answer: a one-line question through `LlamaCppLLM.complete`.",
            "",
            *llm_rows,
        ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
