"""The `ragcli` command: thin. It parses options, calls the library, and prints a table or JSON.

Errors print as one line `error: ...` with a non-zero exit; `-v` shows tracebacks. Heavy libraries (torch,
unstructured, llama_cpp) are imported only by the commands that run models, so `ragcli --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ragcli.errors import ConfigError, RagError

app = typer.Typer(
    name="ragcli",
    help="Cost-aware RAG: answers over your documents for a fraction of the tokens, with a ledger of every cent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Validate and show pipeline configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
eval_app = typer.Typer(
    help="Measure retrieval quality and answer-in-context against tokens and dollars.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
train_app = typer.Typer(help="Train models on your own labels (rerankers).", no_args_is_help=True)
app.add_typer(train_app, name="train")

out = Console()
err = Console(stderr=True)

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 2  # a batch finished but some files failed
EXIT_USAGE = 64  # bad input, config or arguments

_state = {"verbose": False}

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="A YAML config file or a preset name (default: local).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Collection to use (overrides config).")
]

T = TypeVar("T")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one line and an exit code; tracebacks only with -v."""
    try:
        yield
    except typer.Exit:
        raise
    except (RagError, OSError) as exc:
        if _state["verbose"]:
            err.print_exception()
        code = EXIT_USAGE if isinstance(exc, ConfigError | RagError) and not _is_backend(exc) else EXIT_ERROR
        message = str(exc).strip()
        err.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def _is_backend(exc: BaseException) -> bool:
    from ragcli.errors import BackendError

    return isinstance(exc, BackendError | OSError)


def _load(config: str | None, collection: str | None = None) -> Any:
    from ragcli.config import load_config
    from ragcli.resources import offline_env

    offline_env()
    overrides: dict[str, Any] = {"collection": collection} if collection else {}
    return load_config(config, overrides=overrides)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples and numbers to plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "items") and callable(obj.items):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def _run(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- config


@config_app.command("validate")
def config_validate(
    file: Annotated[str, typer.Argument(help="A YAML config file or a preset name.")],
) -> None:
    """Check a config and list every problem with its YAML path."""
    from ragcli.config import load_config

    with _errors():
        cfg = load_config(file)
        out.print(f"ok: {file} is a valid config (pipeline {cfg.name!r})")


@config_app.command("show")
def config_show(
    file: Annotated[str | None, typer.Argument(help="A YAML file or preset (default: local).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the effective config, every default filled in."""
    from ragcli.config import dump_config

    with _errors():
        cfg = _load(file)
        if as_json:
            print_json(cfg.model_dump(mode="json"))
        else:
            sys.stdout.write(dump_config(cfg))


@config_app.command("presets")
def config_presets() -> None:
    """List the shipped presets."""
    from ragcli.config import load_config, preset_names

    for name in preset_names():
        out.print(f"{name:12s} {load_config(name).description}")


# ---------------------------------------------------------------- doctor


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Check the offline resources (models, tokenizer files, engines) and prepare them; say what is missing."""
    from ragcli.doctor import run_checks

    checks = run_checks()
    if as_json:
        print_json(checks)
    else:
        table = Table(title="ragcli doctor", show_lines=False)
        for col in ("resource", "status", "detail"):
            table.add_column(col, overflow="fold")
        for c in checks:
            status = (
                "[green]ok[/green]"
                if c.ok
                else ("[red]missing[/red]" if c.required else "[yellow]absent[/yellow]")
            )
            table.add_row(c.name, status, c.detail)
        out.print(table)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(EXIT_ERROR)


# ---------------------------------------------------------------- query, chat


def _print_answer(ans: Any, *, streamed: bool) -> None:
    for warning in ans.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    if not streamed:
        out.print(ans.text or "(no answer)", highlight=False)
    if ans.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in ans.citations:
            where = f" > {c.section}" if c.section else ""
            page = f" (p. {c.page})" if c.page else ""
            out.print(f"  [{c.number}] {c.source}{where}{page}", highlight=False, markup=False)
    u = ans.usage
    usd = "unknown" if u.usd is None else f"${u.usd:.6f}"
    est = " (estimated)" if ans.token_count_estimated else ""
    out.print(
        f"\n[dim]model {ans.model} · prompt {ans.prompt_tokens.get('total', 0)} tokens{est} · "
        f"output {u.output_tokens} tokens · cost {usd}[/dim]"
    )


def _print_prompt(ans: Any) -> None:
    parts = ", ".join(f"{k} {v}" for k, v in ans.prompt_tokens.items())
    err.print(f"[bold]prompt[/bold] ({parts} tokens)")
    for m in ans.prompt:
        err.print(f"[bold]--- {m.role}[/bold]")
        err.print(m.content, markup=False, highlight=False)
    err.print("[bold]---[/bold]")


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="The question.")],
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    where: Annotated[str | None, typer.Option(help="Filter, e.g. \"type = 'pdf' and year >= 2020\".")] = None,
    model: Annotated[str | None, typer.Option(help="Override the config's LLM model name.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(help="Cap on context tokens.")] = None,
    show_prompt: Annotated[bool, typer.Option(help="Print the exact prompt with tokens per part.")] = False,
    no_answer: Annotated[bool, typer.Option(help="Stop before the LLM call.")] = False,
    stream: Annotated[bool, typer.Option(help="Stream the answer as it is generated.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question over the ingested documents, with citations and its cost."""
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages

    with _errors():
        cfg = _load(config, collection)
        if model:
            cfg.llm.model = model
        stages = Stages.from_config(cfg)
        try:
            streaming = stream and not as_json and not no_answer
            opts = QueryOptions(
                where=where,
                budget_tokens=budget_tokens,
                no_answer=no_answer,
                on_token=(lambda s: out.print(s, end="", highlight=False, markup=False))
                if streaming
                else None,
            )
            ans = answer(question, stages, opts)
        finally:
            stages.close()
        if as_json:
            print_json(ans)
            return
        if show_prompt or no_answer:
            _print_prompt(ans)
        if streaming:
            out.print()
        if not no_answer:
            _print_answer(ans, streamed=streaming)


@app.command()
def chat(
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    where: Annotated[str | None, typer.Option(help="Filter for every turn.")] = None,
) -> None:
    """A multi-turn chat over the documents; history is kept and counted. Empty line or Ctrl-D ends."""
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages
    from ragcli.types import Message, Usage

    with _errors():
        cfg = _load(config, collection)
        stages = Stages.from_config(cfg)
        history: list[Message] = []
        total = Usage()
        try:
            while True:
                try:
                    line = input("you> ").strip()
                except EOFError:
                    break
                if not line:
                    break
                out.print("bot> ", end="")
                opts = QueryOptions(
                    where=where,
                    history=list(history),
                    on_token=lambda s: out.print(s, end="", highlight=False, markup=False),
                )
                ans = answer(line, stages, opts)
                out.print()
                _print_answer(ans, streamed=True)
                total = total + ans.usage
                history += [Message("user", line), Message("assistant", ans.text)]
        finally:
            stages.close()
        usd = "unknown" if total.usd is None else f"${total.usd:.6f}"
        out.print(f"[dim]session: {total.calls} calls, {total.input_tokens} input tokens, cost {usd}[/dim]")


# ---------------------------------------------------------------- ingest


def _ingest_summary(report: Any, collection: str) -> dict[str, Any]:
    counts = {
        s: sum(1 for f in report.files if f.status == s) for s in ("ok", "failed", "empty", "unchanged")
    }
    return {
        "collection": collection,
        "files": {**counts, "total": len(report.files)},
        "chunks": {
            "added": report.chunks_added,
            "replaced": report.chunks_replaced,
            "removed": report.chunks_removed,
        },
        "tokens_embedded": report.tokens_embedded,
        "largest_chunk_tokens": report.largest_chunk_tokens,
        "seconds": round(report.seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()},
        "usage": to_jsonable(report.usage),
        "failures": [{"path": f.path, "reason": f.reason} for f in report.files if f.status == "failed"],
        "empty": [{"path": f.path, "reason": f.reason} for f in report.files if f.status == "empty"],
    }


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files and folders to ingest.", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="Metadata for every chunk: key=value (repeatable).")
    ] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove chunks of files that are gone.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Parse, chunk, embed and store documents; unchanged files are skipped.

    Exit codes: 0 every file ingested (or unchanged/empty), 2 some files failed (see the reasons), 64 bad
    arguments or config (e.g. a path that does not exist), 1 a backend failed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ragcli.errors import InputError
    from ragcli.pipelines.ingest_pipeline import IngestProgress, ingest, parse_meta
    from ragcli.pipelines.stages import Stages

    with _errors():
        if not paths:
            raise InputError("no paths given; run `ragcli ingest PATH...` with one or more files or folders")
        user_meta = parse_meta(meta or [])
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            raise InputError(
                f"path not found: {', '.join(missing)}; check the spelling, or pass an existing "
                "file or folder"
            )
        cfg = _load(config, collection)
        stages = Stages.from_config(cfg)
        bar = Progress(
            TextColumn("ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err,
            transient=True,
        )
        task = bar.add_task("", total=None)

        def on_progress(p: IngestProgress) -> None:
            bar.update(task, completed=p.files_done, total=p.files_total, description=Path(p.path).name[:40])

        try:
            with bar:
                report = ingest(paths, stages, meta=user_meta, prune=prune, progress=on_progress)
        finally:
            stages.close()
        summary = _ingest_summary(report, cfg.collection)
        if as_json:
            print_json(summary)
        else:
            table = Table(title=f"ingest into {cfg.collection!r}", show_header=False)
            table.add_column("what")
            table.add_column("count", justify="right")
            f, c = summary["files"], summary["chunks"]
            for label, value in (
                ("files ok", f["ok"]),
                ("files failed", f["failed"]),
                ("files empty", f["empty"]),
                ("files unchanged (skipped)", f["unchanged"]),
                ("chunks added", c["added"]),
                ("chunks replaced", c["replaced"]),
                ("chunks removed", c["removed"]),
                ("tokens embedded", report.tokens_embedded),
                ("largest chunk (tokens)", report.largest_chunk_tokens),
                ("seconds", f"{report.seconds:.1f}"),
            ):
                table.add_row(label, str(value))
            out.print(table)
            for item in summary["failures"]:
                out.print(f"[red]failed[/red] {item['path']}: {item['reason']}", highlight=False)
            for item in summary["empty"]:
                out.print(f"[yellow]empty[/yellow] {item['path']}: {item['reason']}", highlight=False)
        if summary["failures"]:
            raise typer.Exit(EXIT_PARTIAL)


# ---------------------------------------------------------------- cost


@app.command("cost")
def cost(
    by: Annotated[str, typer.Option("--by", help="Group totals by day, model or stage.")] = "day",
    since: Annotated[
        str | None, typer.Option("--since", help="Only calls from this day on (YYYY-MM-DD).")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what was spent: calls, input/cached/output tokens and dollars from the ledger."""
    from ragcli.cost.ledger import GROUP_BY, Ledger, ledger_path
    from ragcli.cost.report import cost_report, format_usd, report_dict
    from ragcli.errors import InputError

    with _errors():
        if by not in GROUP_BY:
            raise InputError(f"--by {by!r} is not a grouping; use one of: {', '.join(GROUP_BY)}")
        path = ledger_path(_load(config))
        if not path.is_file():
            if as_json:
                print_json({"by": by, "since": since, "ledger": str(path), "groups": [], "total": None})
            else:
                out.print(f"no calls recorded yet (ledger {path})", highlight=False)
            return
        with Ledger(path) as ledger:
            report = cost_report(ledger, by, since)  # type: ignore[arg-type]
        if as_json:
            print_json(report_dict(report))
            return
        table = Table(title=f"cost by {by}" + (f" since {report.since}" if report.since else ""))
        for col in (by, "calls", "input", "cached", "output", "usd"):
            table.add_column(col, justify="left" if col == by else "right")
        for g in [*report.groups, report.total]:
            table.add_row(
                g.key,
                str(g.calls),
                f"{g.input_tokens:,}",
                f"{g.cached_tokens:,}",
                f"{g.output_tokens:,}",
                format_usd(g),
                end_section=bool(report.groups) and g is report.groups[-1],
            )
        out.print(table)
        if report.total.unknown_cost_calls:
            out.print(
                f"[yellow]{report.total.unknown_cost_calls} call(s) used models with no known price: the "
                "dollars above leave them out; add their prices under cost.prices in the config[/yellow]"
            )
        out.print(f"[dim]ledger {path}[/dim]", highlight=False)


# ---------------------------------------------------------------- retrieval: eval retrieval, train reranker


def _bar(label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(label),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


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

    with _errors():
        if mode is not None and mode not in ("dense", "sparse", "hybrid"):
            raise InputError(f"--mode {mode!r} is not a search mode; use dense, sparse or hybrid")
        cfg = _load(config)
        if mode is not None:
            cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"mode": mode})})
        bar = _bar("eval")
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
            raise typer.Exit(130)


def _installed(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
    except PackageNotFoundError:
        return False
    return True


@train_app.command("reranker")
def train_reranker_cmd(
    name: Annotated[
        str, typer.Option("--name", help="Name to save it under; use it as `model: trained:NAME`.")
    ],
    pairs: Annotated[Path | None, typer.Option("--pairs", help="JSONL of {query, passage, label}.")] = None,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="BEIR corpus.jsonl.")] = None,
    queries: Annotated[Path | None, typer.Option("--queries", help="BEIR queries.jsonl.")] = None,
    qrels: Annotated[Path | None, typer.Option("--qrels", help="BEIR qrels TSV (train split!).")] = None,
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
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a cross-encoder reranker on your labeled pairs, with hard negatives mined from your index."""
    from ragcli.retrieval.reranker_data import load_training_data
    from ragcli.retrieval.reranker_training import train_reranker

    with _errors():
        cfg = _load(config)
        data = load_training_data(
            cfg,
            pairs_file=pairs,
            corpus=corpus,
            queries=queries,
            qrels=qrels,
            negatives_per_query=negatives,
            max_queries=max_queries,
        )
        bar = _bar("train")
        task = bar.add_task("", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, description=f"loss {loss:.3f}")

        with bar:
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

    with _errors():
        cfg = _load(config)
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
            raise typer.Exit(130)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
