"""`ragcli eval retrieval`, `ragcli eval qa` and `ragcli train reranker`: thin wrappers over `ragcli.eval`
and `ragcli.train`, registered on the apps of `ragcli.cli` (`train embedder` is in `cli_train.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ragcli.cli_support import (
    EXIT_INTERRUPTED,
    CollectionOpt,
    ConfigOpt,
    JsonOpt,
    err,
    errors,
    load,
    out,
    print_json,
    progress_bar,
    to_jsonable,
)

eval_app = typer.Typer(
    help="Measure retrieval quality and answer-in-context against tokens and dollars.", no_args_is_help=True
)
train_app = typer.Typer(
    help="Train models on your own labels (rerankers, embedders, fusions, sentence models), gated on held-out labels.",
    no_args_is_help=True,
)


# ---------------------------------------------------------------- retrieval: eval retrieval, train reranker


@eval_app.command("retrieval")
def eval_retrieval(
    corpus: Annotated[Path, typer.Option("--corpus", help="BEIR corpus.jsonl (_id, title, text).")],
    queries: Annotated[Path, typer.Option("--queries", help="BEIR queries.jsonl (_id, text).")],
    qrels: Annotated[Path, typer.Option("--qrels", help="BEIR qrels TSV (query-id, corpus-id, score).")],
    config: ConfigOpt = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="dense, sparse or hybrid (overrides config).")
    ] = None,
    rerank_depth: Annotated[
        int | None, typer.Option("--rerank-depth", min=1, help="Candidates the reranker re-orders.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index a BEIR corpus (reused when already built), run the judged queries, report nDCG@10, Recall@10/100,
    MRR@10 and per-stage latency."""
    from ragcli.errors import InputError
    from ragcli.eval.retrieval_eval import evaluate_retrieval

    with errors():
        if mode is not None and mode not in ("dense", "sparse", "hybrid"):
            raise InputError(f"--mode {mode!r} is not a search mode; use dense, sparse or hybrid")
        cfg = load(config)
        if mode is not None:
            cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"mode": mode})})
        bar = progress_bar("eval")
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        with bar:
            result = evaluate_retrieval(
                cfg, corpus, queries, qrels, rerank_depth=rerank_depth, progress=progress
            )
        if as_json:
            from importlib.metadata import version

            data = to_jsonable(result)
            data.pop("run", None)
            data["versions"] = {
                p: version(p) for p in ("ragcli", "qdrant-edge-py", "sentence-transformers") if _installed(p)
            }
            print_json(data)
        else:
            table = Table(
                title=f"retrieval: {result.queries} queries, mode {result.mode}, reranker "
                f"{result.reranker or 'none'}" + ("" if result.complete else " (PARTIAL)")
            )
            for name in result.metrics:
                table.add_column(name, justify="right")
            table.add_row(*(f"{v:.4f}" for v in result.metrics.values()))
            out.print(table)
            lat = Table(title="latency per query (ms)")
            for col in ("stage", "p50", "p95"):
                lat.add_column(col, justify="left" if col == "stage" else "right")
            for stage, s in result.latency_ms.items():
                lat.add_row(stage, f"{s['p50']:.1f}", f"{s['p95']:.1f}")
            out.print(lat)
            reuse = "reused" if result.index_reused else f"{result.embedded_docs} documents embedded"
            out.print(
                f"[dim]index {result.collection}: {result.corpus_docs} documents, {reuse} "
                f"({result.index_seconds:.1f}s)[/dim]",
                highlight=False,
            )
        if not result.complete:
            raise typer.Exit(EXIT_INTERRUPTED)


def _installed(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


TrainedNameOpt = Annotated[
    str, typer.Option("--name", help="Name to save it under; use it as `model: trained:NAME`.")
]
PairsOpt = Annotated[Path | None, typer.Option("--pairs", help="JSONL of {query, passage, label}.")]
CorpusOpt = Annotated[Path | None, typer.Option("--corpus", help="BEIR corpus.jsonl.")]
QueriesOpt = Annotated[Path | None, typer.Option("--queries", help="BEIR queries.jsonl.")]
QrelsOpt = Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV (train split!).")]
FromFeedbackOpt = Annotated[
    bool,
    typer.Option(
        "--from-feedback",
        help="Train on the relevance labels `ragcli feedback` gave this collection's sources (written as a "
        "pairs file under <home>/feedback first).",
    ),
]


@train_app.command("reranker")
def train_reranker_cmd(
    name: TrainedNameOpt,
    pairs: PairsOpt = None,
    corpus: CorpusOpt = None,
    queries: QueriesOpt = None,
    qrels: QrelsOpt = None,
    from_feedback: FromFeedbackOpt = False,
    collection: CollectionOpt = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Encoder to start from (default: the packaged all-MiniLM-L6-v2)."),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    negatives: Annotated[int, typer.Option("--negatives", min=0, help="Hard negatives mined per query.")] = 3,
    max_queries: Annotated[
        int | None,
        typer.Option("--max-queries", min=1, help="Train on at most this many queries (CPU time)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    max_length: Annotated[int, typer.Option("--max-length", min=16)] = 256,
    learning_rate: Annotated[float, typer.Option("--lr")] = 2e-5,
    random_negatives: Annotated[
        int, typer.Option("--random-negatives", min=0, help="Random corpus negatives per query (BEIR input).")
    ] = 1,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout", min=0.0, max=0.9, help="Share of queries held out for the gate (0 = none)."
        ),
    ] = 0.2,
    gate_depth: Annotated[
        int, typer.Option("--gate-depth", min=2, help="Candidates re-ordered in the gate.")
    ] = 20,
    quantize: Annotated[
        bool | None,
        typer.Option(
            "--quantize/--no-quantize",
            help="Also make its int8 model for `reranker.backend: openvino_int8` from the training pairs "
            "(default: when the openvino extra is installed).",
        ),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a cross-encoder reranker on your labeled pairs (hard negatives mined from your index, random
    ones from the corpus, a class-weighted loss), then gate it against your current ranking on held-out queries."""
    from ragcli.cli_train import (
        gate_trained_reranker,
        held_out_split,
        pairs_from_feedback,
        quantize_trained_reranker,
        training_progress,
    )
    from ragcli.train.reranker_data import load_training_data
    from ragcli.train.reranker_training import train_reranker
    from ragcli.trained_models import check_name

    with errors():
        check_name(name, "reranker")  # before any training: the name becomes a folder under the home
        cfg = load(config, collection)
        pairs = pairs_from_feedback(cfg, pairs, corpus) if from_feedback else pairs
        held, gs = held_out_split(pairs, corpus, queries, qrels, holdout)
        data = load_training_data(
            cfg,
            pairs_file=pairs,
            corpus=corpus,
            queries=queries,
            qrels=qrels,
            negatives_per_query=negatives,
            max_queries=max_queries,
            exclude_queries=held,
            random_per_query=random_negatives,
        )
        with training_progress() as on_step:
            report = train_reranker(
                data.pairs,
                name=name,
                base_model=base_model,
                epochs=epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                max_length=max_length,
                home=cfg.home_dir(),
                negatives_source=data.negatives_source,
                data=data.data,
                on_step=on_step,
            )
        if as_json:
            print_json(report)
        else:
            out.print(
                f"trained reranker [bold]{report.name}[/bold] on {report.pairs} pairs ({report.positives} "
                f"positive, {report.negatives} negative; negatives {report.negatives_source}) in "
                f"{report.seconds:.0f}s, final loss {report.final_loss:.3f}",
                highlight=False,
            )
            out.print(
                f"saved to {report.path}; use it with `reranker: {{type: cross_encoder, model: "
                f"trained:{report.name}}}`",
                highlight=False,
            )
        if gs is not None:
            gate_trained_reranker(cfg, report, gs, depth=gate_depth, max_length=max_length, as_json=as_json)
        else:
            err.print("[yellow]--holdout 0: no deployment gate was run; the reranker is unverified[/yellow]")
        quantize_trained_reranker(
            Path(report.path),
            [(p.query, p.passage) for p in data.pairs],
            max_length=max_length,
            as_json=as_json,
            asked=quantize,
        )


# ---------------------------------------------------------------- eval qa


def _qa_table(report: Any) -> Table:
    table = Table(title=f"{report.config_name} on {Path(report.questions_file).name} ({report.format})")
    for col in (
        "budget",
        "questions",
        "answer in ctx",
        "(incl. q)",
        "support recall",
        "mean tok",
        "p95 tok",
        "$ / 1k q",
        "s / q",
        "EM",
        "F1",
    ):
        table.add_column(col, justify="right")
    for r in report.runs:
        usd = "unknown" if r.usd_per_1k_queries is None else f"{r.usd_per_1k_queries:.4f}"
        table.add_row(
            "config" if r.budget_tokens is None else str(r.budget_tokens),
            f"{r.questions}/{r.questions_planned}" + (" PARTIAL" if r.partial else ""),
            f"{100 * r.answer_in_context:.1f}%",
            f"{100 * r.answer_in_prompt:.1f}%",
            f"{100 * r.supporting_recall:.1f}%",
            f"{r.mean_prompt_tokens:.0f}",
            f"{r.p95_prompt_tokens:.0f}",
            usd,
            f"{r.seconds_per_query:.3f}",
            "-" if r.exact_match is None else f"{100 * r.exact_match:.1f}",
            "-" if r.f1 is None else f"{100 * r.f1:.1f}",
        )
    return table


@eval_app.command("qa")
def eval_qa(
    questions: Annotated[
        Path, typer.Option("--questions", help="JSONL questions (HotpotQA IRCoT or NQ-Open).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="File format: hotpotqa or nq.")],
    budget_tokens: Annotated[
        list[int] | None,
        typer.Option("--budget-tokens", help="Context budget in tokens; repeat it for a cost-quality curve."),
    ] = None,
    config: ConfigOpt = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N questions (the corpus stays whole).")
    ] = None,
    answer_it: Annotated[
        bool, typer.Option("--answer", help="Call the LLM too; score exact match and F1.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Count and price prompts as this model (e.g. gpt-4o-mini); default: the config's LLM.",
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Draw tokens vs answer-in-context into this PNG.")
    ] = None,
    per_question: Annotated[bool, typer.Option(help="With --json, include every question's row.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer-in-context vs prompt tokens and dollars on a QA file (HotpotQA or NQ), per context budget."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ragcli.eval.qa_data import load_qa
    from ragcli.eval.qa_eval import evaluate_qa, plot_report, report_to_dict, resolve_pricing

    with errors():
        cfg = load(config)
        dataset = load_qa(questions, fmt)
        pricing, counter, tokenizer = resolve_pricing(cfg, model)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True, disable=as_json) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            report = evaluate_qa(
                dataset,
                cfg,
                budget_tokens or [None],
                limit=limit,
                answer=answer_it,
                pricing=pricing,
                count_tokens=counter,
                tokenizer_name=tokenizer,
                progress=progress,
            )
        if plot is not None and report.runs:
            plot_report(report, plot)
        if as_json:
            print_json(report_to_dict(report, per_question=per_question))
        else:
            out.print(_qa_table(report))
            idx = report.index
            if idx is not None:
                out.print(
                    f"[dim]index {idx.collection}: {idx.chunks} chunks of {idx.paragraphs} paragraphs, "
                    f"{'reused' if idx.reused else f'{idx.embedded_chunks} embedded in {idx.seconds:.0f}s'}; "
                    f"tokens: {report.tokenizer}[/dim]"
                )
            if plot is not None:
                out.print(f"plot: {plot}")
        if report.partial:
            err.print(
                "[yellow]interrupted: the results above are PARTIAL (not every question was measured)[/yellow]"
            )
            raise typer.Exit(EXIT_INTERRUPTED)
