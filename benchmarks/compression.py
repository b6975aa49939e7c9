"""Compression benchmarks: answer kept vs ratio reached and speed, on real data, side by side in one run.

    .venv/bin/python benchmarks/compression.py [--data ../shared/data] [--split tune|report|all] [--llmlingua N]

- HotpotQA: each question's own ~10 paragraphs (`title` line + text, blank lines between) compressed 2x, 3x, 5x, 10x
  by: SentenceCompressor (sentences; sentences + word pruning), a plain BM25 sentence pick (the best sentences by
  BM25 until the budget, in document order), truncation (the first tokens), and LLMLingua / LongLLMLingua over
  SmolLM2-135M when `llmlingua` is installed (`--llmlingua N` questions: seconds per prompt on a CPU).
  Answer kept: a SQuAD-normalised gold answer occurs in the compressed text; yes/no questions left out.
  The questions are split in two halves by position: `tune` (the first, used to choose the weights) and `report`.
- kv_retrieval: the Lost-in-the-Middle prompt (a JSON object of 75 UUID pairs + `Key: "..."`) at 2x; exact
  `"key": "value"` pair kept.
- GSM8K: the standard 8-shot chain-of-thought prompt compressed 3x (the test question as the query): every number
  of every demonstration kept (occurrences, as a multiset).
Tokens: cl100k_base. Prints markdown; `--out FILE` writes it.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.cost.tokens import counter_for  # noqa: E402
from ragcli.eval.normalize import answer_in_text, is_yes_no  # noqa: E402
from ragcli.generation.compression_types import Compressed, CompressionTarget  # noqa: E402
from ragcli.generation.sentence_compressor import SentenceCompressor  # noqa: E402
from ragcli.generation.sentence_selector import LexicalSentenceSelector, split_sentences  # noqa: E402

RATIOS = (2.0, 3.0, 5.0, 10.0)
Method = Callable[[str, str, CompressionTarget], Compressed]


def hotpot_items(data: Path) -> list[dict[str, Any]]:
    items = []
    for line in (data / "hotpotqa" / "questions.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        golds = [s for obj in row["answers_objects"] for s in obj.get("spans", [])]
        if not golds or is_yes_no(golds):
            continue
        text = "\n\n".join(f"{c['title']}\n{c['paragraph_text']}" for c in row["contexts"])
        items.append({"question": row["question_text"], "golds": golds, "text": text})
    return items


def hotpot_halves(data: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`hotpot_items` split as every compression sweep splits them: (tune half, report half)."""
    items = hotpot_items(data)
    half = len(items) // 2
    return items[:half], items[half:]


def answer_kept(comp: Any, items: Sequence[dict[str, Any]], ratio: float) -> float:
    """Share of `items` whose gold answer is still in their paragraphs after `comp` compresses them to `ratio`."""
    target = CompressionTarget(ratio=ratio)
    kept = sum(
        answer_in_text(it["golds"], comp.compress(it["question"], it["text"], target).text) for it in items
    )
    return kept / len(items)


def bm25_pick(count: Callable[[str], int]) -> Method:
    """The plain baseline: best sentences by BM25 against the question until the budget, in document order."""
    selector = LexicalSentenceSelector()

    def run(question: str, text: str, target: CompressionTarget) -> Compressed:
        t0 = time.perf_counter()
        original = count(text)
        budget = target.budget(original)
        spans = split_sentences(text)
        sents = [text[s.start : s.end] for s in spans]
        scores = selector.score(question, sents)
        order = sorted(range(len(sents)), key=lambda i: -scores[i])
        keep: list[int] = []
        room = budget
        for i in order:
            c = count(sents[i]) + 1
            if c <= room:
                keep.append(i)
                room -= c
        out = " ".join(sents[i] for i in sorted(keep))
        while count(out) > budget and keep:
            keep.pop()
            out = " ".join(sents[i] for i in sorted(keep))
        return Compressed(out, original, count(out), budget, time.perf_counter() - t0, "bm25 pick")

    return run


def truncation(count: Callable[[str], int]) -> Method:
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")

    def run(question: str, text: str, target: CompressionTarget) -> Compressed:
        t0 = time.perf_counter()
        ids = enc.encode(text, disallowed_special=())
        budget = target.budget(len(ids))
        out = enc.decode(ids[:budget])
        return Compressed(out, len(ids), count(out), budget, time.perf_counter() - t0, "truncation")

    return run


def measure_hotpot(
    items: list[dict[str, Any]], methods: dict[str, Method], ratios: tuple[float, ...] = RATIOS
) -> list[str]:
    rows = [
        "| method | ratio asked | answer kept | ratio reached (mean) | within 10 % of target | ms / 1k tokens (p50) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, method in methods.items():
        for ratio in ratios:
            kept = 0
            reached: list[float] = []
            within = 0
            ms_per_k: list[float] = []
            for it in items:
                c = method(it["question"], it["text"], CompressionTarget(ratio=ratio))
                kept += answer_in_text(it["golds"], c.text)
                reached.append(c.ratio)
                within += c.tokens <= c.target_tokens * 1.1 and c.tokens >= c.target_tokens * 0.9
                ms_per_k.append(1000 * c.seconds / max(c.original_tokens, 1) * 1000)
            n = len(items)
            rows.append(
                f"| {name} | {ratio:.0f}x | {kept / n:.1%} | {statistics.mean(reached):.2f}x | {within / n:.0%} | "
                f"{statistics.median(ms_per_k):.1f} |"
            )
            print(rows[-1], flush=True)
    return rows


def kv_items(data: Path, limit: int | None) -> list[dict[str, str]]:
    out = []
    for line in (data / "kv_retrieval" / "examples.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        body = ",\n ".join(f'"{k}": "{v}"' for k, v in row["ordered_kv_records"])
        text = "JSON data:\n{" + body + "}"
        out.append({"text": text, "key": row["key"], "value": row["value"]})
        if limit and len(out) >= limit:
            break
    return out


def measure_kv(items: list[dict[str, str]], methods: dict[str, Method]) -> list[str]:
    rows = [
        "| method | ratio asked | exact pair kept | value kept | ratio reached |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, method in methods.items():
        pair = value = 0
        reached = []
        for it in items:
            q = (
                "Extract the value corresponding to the specified key in the JSON object below. "
                f'Key: "{it["key"]}"'
            )
            c = method(q, it["text"], CompressionTarget(ratio=2.0))
            pair += f'"{it["key"]}": "{it["value"]}"' in c.text
            value += it["value"] in c.text
            reached.append(c.ratio)
        n = len(items)
        rows.append(f"| {name} | 2x | {pair / n:.1%} | {value / n:.1%} | {statistics.mean(reached):.2f}x |")
        print(rows[-1], flush=True)
    return rows


def gsm8k_prompt(data: Path) -> str:
    import yaml

    cfg = yaml.safe_load((data / "gsm8k" / "gsm8k-cot_8shot_demos_lm_eval.yaml").read_text(encoding="utf-8"))
    demos = cfg["fewshot_config"]["samples"]
    return "\n\n".join(f"Q: {d['question']}\nA: {d['target']}" for d in demos)


def measure_gsm8k(data: Path, methods: dict[str, Method], questions: int) -> list[str]:
    demos = gsm8k_prompt(data)
    numbers = Counter(re.findall(r"\d+(?:\.\d+)?", demos))
    tests = [json.loads(line)["question"] for line in (data / "gsm8k" / "test.jsonl").open(encoding="utf-8")]
    rows = [
        "| method | ratio asked | ratio reached | prompts with every number kept | numbers kept (occurrences) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, method in methods.items():
        all_kept = 0
        share: list[float] = []
        reached = []
        for q in tests[:questions]:
            c = method(q, demos, CompressionTarget(ratio=3.0))
            got = Counter(re.findall(r"\d+(?:\.\d+)?", c.text))
            kept = sum(min(got[k], v) for k, v in numbers.items())
            share.append(kept / sum(numbers.values()))
            all_kept += kept == sum(numbers.values())
            reached.append(c.ratio)
        rows.append(
            f"| {name} | 3x | {statistics.mean(reached):.2f}x | {all_kept}/{questions} | {statistics.mean(share):.1%} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--split", choices=("tune", "report", "all"), default="report")
    ap.add_argument("--kv", type=int, default=None, help="kv examples (default all)")
    ap.add_argument("--gsm8k", type=int, default=20, help="GSM8K test questions used as queries")
    ap.add_argument("--llmlingua", type=int, default=0, help="HotpotQA questions for LLMLingua (0: skip)")
    ap.add_argument(
        "--llmlingua-ratios", nargs="+", type=float, default=list(RATIOS), help="ratios LLMLingua is run at"
    )
    ap.add_argument("--skip-main", action="store_true", help="only the LLMLingua comparison")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    count = counter_for("gpt-4").count
    items = hotpot_items(args.data)
    half = len(items) // 2
    items = {"tune": items[:half], "report": items[half:], "all": items}[args.split]
    ours = SentenceCompressor(count)
    pruned = SentenceCompressor(count, prune_words=True)
    no_fill = SentenceCompressor(count, fill=False, bridge_weight=0.0)
    methods: dict[str, Method] = {
        "ragcli sentences": ours.compress,
        "ragcli sentences as before 2026-12-03 (no fill, no bridge)": no_fill.compress,
        "ragcli sentences + word pruning": pruned.compress,
        "BM25 sentence pick": bm25_pick(count),
        "truncation": truncation(count),
    }
    lines = [f"## HotpotQA ({args.split} split: {len(items)} questions)", ""]
    if not args.skip_main:
        lines += measure_hotpot(items, methods)
    if args.llmlingua:
        from ragcli.generation.llmlingua_compressor import LLMLinguaCompressor

        sample = items[: args.llmlingua]
        ling = {
            "LLMLingua (SmolLM2-135M)": LLMLinguaCompressor(count).compress,
            "LongLLMLingua (SmolLM2-135M)": LLMLinguaCompressor(count, long=True).compress,
            "ragcli sentences (same sample)": ours.compress,
        }
        lines += ["", f"### LLMLingua on the first {len(sample)} questions of the split", ""]
        lines += measure_hotpot(sample, ling, tuple(args.llmlingua_ratios))
        if args.skip_main:
            text = "\n".join(lines) + "\n"
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            print(text)
            return
    kv = kv_items(args.data, args.kv)
    lines += ["", f"## kv_retrieval ({len(kv)} examples, 75 pairs each)", ""]
    lines += measure_kv(
        kv,
        {
            "ragcli sentences": ours.compress,
            "ragcli sentences, no fill, no bridge": no_fill.compress,
            "BM25 sentence pick": bm25_pick(count),
            "truncation": truncation(count),
        },
    )
    demo_pruned = SentenceCompressor(count, prune_words=True, keep_share=None)
    lines += [
        "",
        f"## GSM8K 8-shot chain-of-thought prompt at 3x ({args.gsm8k} test questions as queries)",
        "",
    ]
    lines += measure_gsm8k(
        args.data,
        {
            "ragcli sentences + word pruning (keep_share auto)": demo_pruned.compress,
            "same, no fill": SentenceCompressor(
                count, prune_words=True, keep_share=None, fill=False
            ).compress,
            "ragcli sentences": ours.compress,
            "BM25 sentence pick": bm25_pick(count),
            "truncation": truncation(count),
        },
        args.gsm8k,
    )
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
