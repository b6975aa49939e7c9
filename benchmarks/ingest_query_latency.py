"""Cold `ragcli query --no-answer` (a new process each time) and warm query latency (one process, model loaded).

A few docs_corpus Markdown pages are ingested into a temporary home first. Cold: the whole command, start to
exit, repeated, for the default config (embedder backend `auto` = ONNX Runtime, token counts from the GGUF's
tokenizer) and for `embedder.backend: torch`, alternating. Warm: `answer(..., no_answer=True)` in one
process after a first query, p50/p90 over the questions. Also the time to load SmolLM2, which the default
no longer pays for counting tokens.

    .venv/bin/python benchmarks/ingest_query_latency.py [--data DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import REPO, default_data, header, loadavg, write_section

QUESTIONS = [
    "How do I configure the navigation?",
    "Which plugins are supported?",
    "How is the site deployed?",
    "What does the theme option change?",
    "How do I add a custom page?",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ragcli = str(Path(sys.executable).with_name("ragcli"))
    load = [loadavg()]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        env = {
            **os.environ,
            "RAGCLI_HOME": str(tmp / "home"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        torch_cfg = tmp / "torch.yaml"
        from importlib import resources

        import yaml

        preset = yaml.safe_load(
            resources.files("ragcli.pipelines.presets").joinpath("local.yaml").read_text()
        )
        preset.setdefault("embedder", {})["backend"] = "torch"
        torch_cfg.write_text(yaml.safe_dump(preset))
        docs = args.data / "docs_corpus" / "markdown_mkdocs" / "docs"
        subprocess.run([ragcli, "ingest", str(docs)], env=env, cwd=REPO, check=True, capture_output=True)
        # one query first: one-time exports and caches (ONNX model, GGUF tokenizer) are not cold-start costs
        subprocess.run(
            [ragcli, "query", "--no-answer", "warm up"], env=env, cwd=REPO, check=True, capture_output=True
        )
        cold: dict[str, list[float]] = {"default (onnx)": [], "backend torch": []}
        for i in range(args.repeats):
            for name, extra in (("default (onnx)", []), ("backend torch", ["--config", str(torch_cfg)])):
                t0 = time.perf_counter()
                r = subprocess.run(
                    [ragcli, "query", "--no-answer", *extra, QUESTIONS[i % len(QUESTIONS)]],
                    env=env,
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                )
                cold[name].append(time.perf_counter() - t0)
                if r.returncode != 0:
                    raise SystemExit(f"{name}: exit {r.returncode}: {r.stderr[-500:]}")
        os.environ["RAGCLI_HOME"] = env["RAGCLI_HOME"]
        from ragcli.config import load_config
        from ragcli.pipelines.query_pipeline import QueryOptions, answer
        from ragcli.pipelines.stages import Stages

        stages = Stages.from_config(load_config("local"))
        answer("warm up", stages, QueryOptions(no_answer=True))
        llm_loaded = stages.llm._llama is not None  # type: ignore[attr-defined]
        warm = []
        for _ in range(4):
            for q in QUESTIONS:
                t0 = time.perf_counter()
                answer(q, stages, QueryOptions(no_answer=True))
                warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stages.llm._load()  # type: ignore[attr-defined]
        llm_load = time.perf_counter() - t0
        stages.close()
    load.append(loadavg())
    rows = "\n".join(
        f"| cold `ragcli query --no-answer`, {name} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |"
        for name, v in cold.items()
    )
    warm.sort()
    body = (
        header(f"python benchmarks/ingest_query_latency.py --repeats {args.repeats}")
        + f"- load average at start {load[0]}, at end {load[1]} (2 cores)\n\n"
        f"19 mkdocs pages ingested (hybrid preset `local`). Cold rows: a new process per query, alternating, "
        f"{args.repeats} each; seconds.\n\n| what | median s | min s | max s |\n| --- | --- | --- | --- |\n"
        + rows
        + f"\n| warm query in one process (p50 / p90 of {len(warm)}) | {warm[len(warm) // 2] * 1000:.0f} ms | "
        f"p90 {warm[int(len(warm) * 0.9)] * 1000:.0f} ms | |\n\n"
        f"- SmolLM2 loaded by the no-answer path: {'yes' if llm_loaded else 'no'} (token counts come from the "
        f"GGUF's tokenizer); loading it would add {llm_load:.1f} s.\n"
    )
    print(body)
    write_section("Query start-up and warm latency", body)


if __name__ == "__main__":
    main()
