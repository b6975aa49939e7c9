"""A real local run for the cost report: ingest, 50 queries and a chat with the packaged models, then the report.

    .venv/bin/python benchmarks/cost_report_run.py [--data ../shared/data] [--home /tmp/ragcli-cost-run]
        [--answered 3] [--queries 50]

Ingests MkDocs' documentation (`docs_corpus/markdown_mkdocs/docs`, 19 pages) with the `local` preset (MiniLM
embedder, SmolLM2-135M through llama.cpp), asks 50 questions made from its section headings ("What about
<heading>?"): the first `--answered` with a real LLM answer, the rest `--no-answer` (retrieval, packing and the
prompt, no LLM call: the LLM on a shared 2-core CPU is the slow part), then a 2-turn chat whose history is kept and
counted. The ledger is then reported with `ragcli cost report --html --price-as gpt-4o-mini` and screenshotted
in headless Chromium: benchmarks/results/cost_report.html and cost_report.png.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ragcli.config import load_config  # noqa: E402
from ragcli.pipelines.ingest_pipeline import ingest  # noqa: E402
from ragcli.pipelines.query_pipeline import QueryOptions, answer  # noqa: E402
from ragcli.pipelines.stages import Stages  # noqa: E402
from ragcli.types import Message, Usage  # noqa: E402

CHAT = (
    "How do I install MkDocs?",
    "And how do I start the development server after that?",
)


def questions(docs: Path, n: int) -> list[str]:
    heads: list[str] = []
    for md in sorted(docs.rglob("*.md")):
        for line in md.read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^#{2,3} (.+)$", line.strip())
            if m:
                title = re.sub(r"[`*_\[\]]", "", m.group(1)).strip()
                if 3 <= len(title) <= 60 and title not in heads:
                    heads.append(title)
    return [f"What about {h.lower()} in MkDocs?" for h in heads[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--home", default=None)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--answered", type=int, default=3)
    args = ap.parse_args()
    docs = Path(args.data) / "docs_corpus" / "markdown_mkdocs" / "docs"
    home = Path(args.home or tempfile.mkdtemp(prefix="ragcli-cost-run-"))
    if home.exists():
        shutil.rmtree(home)
    cfg = load_config("local")
    cfg.home = str(home)
    cfg.collection = "mkdocs"
    stages = Stages.from_config(cfg)
    t0 = time.perf_counter()
    try:
        report = ingest([docs], stages)
        print(
            f"ingest: {len(report.files)} files, {report.tokens_embedded} tokens, {time.perf_counter() - t0:.0f} s"
        )
        qs = questions(docs, args.queries)
        for i, q in enumerate(qs):
            t1 = time.perf_counter()
            ans = answer(q, stages, QueryOptions(no_answer=i >= args.answered))
            print(f"{i + 1:2d} {time.perf_counter() - t1:5.1f}s {ans.usage.input_tokens:5d} in {q[:60]}")
        history: list[Message] = []
        total = Usage()
        for turn in CHAT:
            ans = answer(turn, stages, QueryOptions(history=list(history)))
            total = total + ans.usage
            history += [Message("user", turn), Message("assistant", ans.text)]
            print(f"chat: {turn} -> {ans.text[:80]!r}")
        print(f"chat session: {total.calls} calls, {total.input_tokens} input tokens")
        ledger = stages.ledger.path
    finally:
        stages.close()
    out = ROOT / "benchmarks" / "results"
    cfg_file = home / "report.yaml"
    cfg_file.write_text(f"cost:\n  ledger: {ledger}\n", encoding="utf-8")
    html = out / "cost_report.html"
    ragcli = [sys.executable, "-m", "ragcli"]
    subprocess.run(
        [
            *ragcli,
            "cost",
            "report",
            "--html",
            str(html),
            "--price-as",
            "gpt-4o-mini",
            "--config",
            str(cfg_file),
        ],
        check=True,
    )
    for by in ("stage", "part", "model"):
        subprocess.run([*ragcli, "cost", "--by", by, "--config", str(cfg_file)], check=True)
    chromium = shutil.which("chromium")
    if chromium:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                    f"--user-data-dir={profile}",
                    "--window-size=1200,2700",
                    f"--screenshot={out / 'cost_report.png'}",
                    html.resolve().as_uri(),
                ],
                check=True,
                capture_output=True,
            )
    print(f"ledger {ledger}; report {html}")


if __name__ == "__main__":
    main()
