"""`ragcli eval compress` and `ragcli eval history`: registered on `eval_app` when `ragcli.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragcli.cli_eval import eval_app
from ragcli.cli_support import ConfigOpt, JsonOpt, errors, load, out, print_json


@eval_app.command("compress")
def eval_compress(
    questions: Annotated[
        Path, typer.Option("--questions", help="JSONL file (HotpotQA IRCoT, NQ-Open or kv).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="hotpotqa, nq or kv.")],
    ratio: Annotated[float, typer.Option("--ratio", min=1.0, help="Compression ratio to ask for.")] = 3.0,
    prune_words: Annotated[bool, typer.Option(help="Also prune words inside kept sentences.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer kept, ratio reached and ms per 1k tokens of the config's compressor (its `compression:` section;
    the sentence compressor's defaults when the config has none). Tokens are cl100k, so that runs compare
    across configs; the ratio asked here replaces the config's target."""
    from ragcli.cost.tokens import counter_for
    from ragcli.eval.compression_eval import evaluate_compression
    from ragcli.generation.build import build_compressor
    from ragcli.generation.sentence_compressor import SentenceCompressor

    with errors():
        cfg = load(config)
        count = counter_for("gpt-4").count
        embed, embedder_name = None, None
        if getattr(cfg.compression, "unit_model", None):  # its gate reads the config's embedder's vectors
            from ragcli.ingest.build import build_embedder

            embedder = build_embedder(cfg.embedder)
            embed, embedder_name = (lambda texts: embedder.embed(texts).vectors), embedder.model_name
        comp = build_compressor(cfg, count, embed, embedder_name)  # None when the config has no compression
        if comp is None:
            comp = SentenceCompressor(count, prune_words=prune_words)
        elif prune_words and isinstance(comp, SentenceCompressor):
            comp.prune_words = True
        report = evaluate_compression(comp, questions, fmt, ratio, limit=limit)
        if as_json:
            print_json(report)
            return
        table = Table(title=f"compression on {questions.name} ({fmt}), {report.items} items, cl100k tokens")
        for col in (
            "method",
            "ratio asked",
            "answer kept",
            "ratio reached",
            "within 10 %",
            "ms / 1k tok",
            "protected",
        ):
            table.add_column(col, justify="right")
        table.add_row(
            report.method,
            f"{report.ratio_asked:g}x",
            f"{100 * report.answer_kept:.1f}%",
            f"{report.ratio_reached:.2f}x",
            f"{100 * report.within_10pct:.0f}%",
            f"{report.ms_per_1k_tokens:.1f}",
            f"{100 * report.protected_kept:.1f}%",
        )
        out.print(table)
        if report.whole_source:
            out.print(
                f"{100 * report.whole_source:.1f}% of the items were sent as one source whole "
                "(compression.whole_source_tokens), not cut to the ratio."
            )


@eval_app.command("history")
def eval_history(
    questions: Annotated[
        Path,
        typer.Option(
            "--questions",
            help="HotpotQA IRCoT JSONL the conversation is built from (required, as for eval qa).",
        ),
    ],
    turns: Annotated[int, typer.Option(min=2)] = 50,
    plant: Annotated[int, typer.Option(min=1, help="Turns in which the user states a fact.")] = 5,
    window: Annotated[int, typer.Option(min=0, help="Turns kept verbatim.")] = 4,
    cap: Annotated[int, typer.Option(min=0, help="Summary token cap.")] = 200,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm",
            help="Also summarise with the config's cheapest tier: ragcli's LLM notes and a LangChain-style "
            "summary buffer (one model call per fold).",
        ),
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """History tokens per turn (whole transcript, last N turns, ragcli's window + summary) and recall of facts
    stated early, over a conversation built from real data (cl100k tokens)."""
    from ragcli.cost.tokens import counter_for
    from ragcli.errors import InputError
    from ragcli.eval.history_eval import evaluate_history, turn_columns

    with errors():
        if not questions.is_file():
            raise InputError(f"question file {str(questions)!r} does not exist; pass --questions FILE")
        summarizer = call = None
        if llm:
            from ragcli.pipelines.query_pipeline import metered_call
            from ragcli.pipelines.stages import Stages

            stages = Stages.from_config(load(config))
            summarizer = stages.tiers[0]
            call = metered_call(stages, summarizer, "summary")
        report = evaluate_history(
            questions,
            counter_for("gpt-4").count,
            turns=turns,
            plant=plant,
            window_turns=window,
            summary_cap_tokens=cap,
            llm=summarizer,
            call=call,
        )
        if as_json:
            print_json(report)
            return
        table = Table(
            title=f"history over {report.turns} turns ({report.planted} with a stated fact), cl100k"
        )
        shown = turn_columns(report.turns)  # only the turns the conversation has
        heads = [f"tokens at turn {shown[0]}"] + [f"at {t}" for t in shown[1:]]
        for col in ("strategy", *heads, "mean", f"early facts at {turns}"):
            table.add_column(col, justify="right")
        for name, series in report.tokens_per_turn.items():
            table.add_row(
                name,
                *(str(series[t - 1]) for t in shown),
                f"{sum(series) / len(series):.0f}",
                f"{100 * report.recall[name]:.0f}%",
            )
        out.print(table)
        for name, usage in report.summarizer_usage.items():
            out.print(
                f"{name}: {usage.calls} summariser calls, {usage.input_tokens} input + {usage.output_tokens} "
                f"output tokens, {report.summarizer_seconds[name]:.0f} s (a hidden cost of the conversation)"
            )
