"""The `ragcli` command: thin. It parses options, calls the library, and prints a table or JSON.

Errors print as one line `error: ...` with a non-zero exit; `-v` shows tracebacks. Heavy libraries (torch,
unstructured, llama_cpp) are imported only by the commands that run models, so `ragcli --help` stays fast.
Shared plumbing is in `cli_support.py`; the eval and train commands are in `cli_eval.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ragcli import (
    cli_compress,  # noqa: F401  (registers `eval compress`, `eval history`)
    cli_train,  # noqa: F401  (registers `ragcli train embedder` on train_app)
)
from ragcli.cli_cache import cache_app  # also registers `train cache-verifier`, `eval cache`
from ragcli.cli_cost import cost_app
from ragcli.cli_eval import eval_app, train_app
from ragcli.cli_router import feedback, router_app  # also registers `train router`, `eval router`
from ragcli.cli_serve import serve_app
from ragcli.cli_support import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CollectionOpt,
    ConfigOpt,
    JsonOpt,
    UsageExit64Group,
    err,
    errors,
    load,
    open_store,
    out,
    print_json,
    release_store,
    set_verbose,
    to_jsonable,
    warn,
)

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "app", "main"]

app = typer.Typer(
    name="ragcli",
    help="Cost-aware RAG: answers over your documents for a fraction of the tokens, with a ledger of every cent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=UsageExit64Group,
)
config_app = typer.Typer(help="Validate and show pipeline configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(router_app, name="router")
app.command("feedback")(feedback)
app.add_typer(cost_app, name="cost")
app.add_typer(serve_app)  # `ragcli serve` and `ragcli keys ...`
app.add_typer(cache_app, name="cache")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")] = False,
) -> None:
    set_verbose(verbose)


# ---------------------------------------------------------------- config


@config_app.command("validate")
def config_validate(
    file: Annotated[str, typer.Argument(help="A YAML config file or a preset name.")],
) -> None:
    """Check a config and list every problem with its YAML path; warn about trained models it names that the
    home does not hold yet (a query would fail on them)."""
    from ragcli.config import load_config

    with errors():
        cfg = load_config(file)
        for missing in _missing_trained(cfg):
            warn(missing)
        out.print(f"ok: {file} is a valid config (pipeline {cfg.name!r})", markup=False, highlight=False)


def _missing_trained(cfg: Any) -> list[str]:
    """`path: ...` for each `trained:NAME` model (and `router.model`) the config names that is not in its home."""
    from ragcli.trained_models import TRAINED_PREFIX, Kind, trained_dir

    home = cfg.home_dir()
    named: list[tuple[str, Any, Kind, str]] = [
        ("packing.sentence_model", cfg.packing.sentence_model, "sentence_models", "sentence-model"),
        ("compression.unit_model", getattr(cfg.compression, "unit_model", None), "unit_models", "unit-model"),
        ("retrieval.fusion", cfg.retrieval.fusion, "fusions", "fusion"),
        ("reranker.model", getattr(cfg.reranker, "model", None), "rerankers", "reranker"),
        ("embedder.model", getattr(cfg.embedder, "model", None), "embedders", "embedder"),
    ]
    found = []
    for path, spec, kind, verb in named:
        name = (
            spec[len(TRAINED_PREFIX) :] if isinstance(spec, str) and spec.startswith(TRAINED_PREFIX) else None
        )
        if name and not (trained_dir(kind, home) / name).is_dir():
            found.append(
                f"{path}: {spec} is not in {trained_dir(kind, home)}; train it with `ragcli train {verb} "
                f"--name {name}` (or set RAGCLI_HOME / home: to where it is)"
            )
    router = cfg.router.model
    if router:
        from ragcli.generation.learned_router import router_names, routers_dir

        if router not in router_names(home):
            found.append(
                f"router.model: no router {router!r} in {routers_dir(home)}; train it with "
                f"`ragcli train router --outcomes FILE --name {router}`"
            )
    return found


@config_app.command("show")
def config_show(
    file: Annotated[str | None, typer.Argument(help="A YAML file or preset (default: local).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the effective config, every default filled in."""
    from ragcli.config import dump_config

    with errors():
        cfg = load(file)
        if as_json:
            print_json(cfg.model_dump(mode="json"))
        else:
            sys.stdout.write(dump_config(cfg))


@config_app.command("presets")
def config_presets() -> None:
    """List the shipped presets."""
    from ragcli.config import load_config, preset_names

    for name in preset_names():
        out.print(f"{name:12s} {load_config(name).description}", markup=False, highlight=False)


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
            table.add_row(escape(c.name), status, escape(c.detail))
        out.print(table)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(EXIT_ERROR)


# ---------------------------------------------------------------- query, chat


class _Streamer:
    """Prints an answer's tokens as they come; `used` says whether any came (a cache hit or a refusal streams
    none, and its text is then printed whole)."""

    def __init__(self) -> None:
        self.used = False

    def __call__(self, token: str) -> None:
        self.used = True
        out.print(token, end="", highlight=False, markup=False)


def _cache_note(ans: Any) -> str:
    """' · from the cache (exact, saved $X)' when the answer was served by the answer cache, else ''."""
    from ragcli.pipelines.cache_step import served_from_cache

    served = served_from_cache(getattr(ans, "trace", None) or [])
    if served is None:
        return ""
    cost = "" if served["saved_usd"] is None else f", saved ${served['saved_usd']:.6f}"
    return f" · from the cache ({served['tier']}{cost})"


def _print_answer(ans: Any, *, streamed: bool) -> None:
    for warning in ans.warnings:
        warn(warning)
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
    # the query id is what `ragcli feedback QUERY_ID good|bad --relevant N` takes
    qid = f" · query {ans.query_id}" if ans.query_id else ""
    out.print(
        f"\n[dim]model {ans.model} · prompt {ans.prompt_tokens.get('total', 0)} tokens{est} · "
        f"output {u.output_tokens} tokens · cost {usd}{_cache_note(ans)}{qid}[/dim]"
    )


def _print_prompt(ans: Any) -> None:
    # stdout, so that `ragcli query ... --show-prompt > prompt.txt` captures it
    parts = ", ".join(f"{k} {v}" for k, v in ans.prompt_tokens.items())
    out.print(f"[bold]prompt[/bold] ({parts} tokens)")
    for m in ans.prompt:
        out.print(f"[bold]--- {m.role}[/bold]")
        out.print(m.content, markup=False, highlight=False)
    out.print("[bold]---[/bold]")


@app.command()
def query(
    question: Annotated[str | None, typer.Argument(help="The question (or --batch FILE).")] = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    where: Annotated[str | None, typer.Option(help="Filter, e.g. \"type = 'pdf' and year >= 2020\".")] = None,
    model: Annotated[str | None, typer.Option(help="Override the config's LLM model name.")] = None,
    budget_tokens: Annotated[int | None, typer.Option(min=16, help="Cap on context tokens (>= 16).")] = None,
    show_prompt: Annotated[bool, typer.Option(help="Print the exact prompt with tokens per part.")] = False,
    no_answer: Annotated[bool, typer.Option("--no-answer", help="Stop before the LLM call.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the answer cache.")
    ] = False,
    stream: Annotated[bool, typer.Option(help="Stream the answer as it is generated.")] = True,
    as_json: JsonOpt = False,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="JSONL of questions: API tiers go through the batch API.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="With --batch: answers JSONL.")] = None,
    no_server: Annotated[
        bool,
        typer.Option(
            "--no-server", help="Query in this process even when a `ragcli serve` of this config is running."
        ),
    ] = False,
) -> None:
    """Answer a question over the ingested documents, with citations and its cost.

    When a `ragcli serve` of the same config runs on this machine, it answers (no model loads here; the answer
    is printed whole rather than streamed); otherwise the query runs in this process.
    """
    if batch is not None or question is None:  # batch mode: ragcli.cli_router.query_batch
        from ragcli.cli_router import query_batch

        return query_batch(
            question, batch, out_file, config, collection, as_json=as_json, where=where, model=model,
            budget_tokens=budget_tokens, refused={"--show-prompt": show_prompt, "--no-answer": no_answer},
        )  # fmt: skip
    with errors():
        cfg = load(config, collection, llm_model=model)
        options = {
            "where": where,
            "budget_tokens": budget_tokens,
            "no_answer": no_answer,
            "no_cache": no_cache,
        }
        if not no_server and _served(cfg, question, options, as_json=as_json, show_prompt=show_prompt):
            return
        from ragcli.pipelines.query_pipeline import QueryOptions, answer
        from ragcli.pipelines.stages import Stages

        stages = Stages.from_config(cfg)
        open_store(stages)  # a store held by another process is found before models load
        try:
            streamer = _Streamer() if stream and not as_json and not no_answer else None
            opts = QueryOptions(
                where=where,
                budget_tokens=budget_tokens,
                no_answer=no_answer,
                no_cache=no_cache,
                on_token=streamer,
            )
            ans = answer(question, stages, opts)
        finally:
            stages.close()
        if as_json:
            print_json(ans)
            return
        _show_answer(
            ans, show_prompt=show_prompt, no_answer=no_answer, streamed=bool(streamer and streamer.used)
        )


def _served(cfg: Any, question: str, options: dict[str, Any], *, as_json: bool, show_prompt: bool) -> bool:
    """Answer through a running `ragcli serve` of this config (nothing heavy is imported); False if none runs."""
    from ragcli.cli_warm import answer_from_json, query_server

    served = query_server(cfg, question, **options)
    if served is None:
        return False
    if as_json:
        print_json(served)
    else:
        _show_answer(answer_from_json(served), show_prompt=show_prompt, no_answer=options["no_answer"])
    return True


def _show_answer(ans: Any, *, show_prompt: bool, no_answer: bool, streamed: bool = False) -> None:
    if show_prompt or no_answer:
        _print_prompt(ans)
    if streamed:
        out.print()
    if not no_answer:
        _print_answer(ans, streamed=streamed)


def chat_summarizer(cfg: Any, stages: Any) -> Any:
    """The chat's summariser: `None` (extractive) or notes by the cheapest tier, each call a hidden-cost stage
    drawn from the query budget and written to the ledger."""
    if cfg.chat.summarizer != "llm":
        return None
    from ragcli.generation.llm_summarizer import LLMSummarizer
    from ragcli.pipelines.query_pipeline import metered_call

    tier = stages.tiers[0]
    call = metered_call(stages, tier, "summary")
    return LLMSummarizer(
        tier, stages.llm.count_tokens, max_note_tokens=cfg.chat.summary_max_tokens, call=call
    )


@app.command()
def chat(
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    where: Annotated[str | None, typer.Option(help="Filter for every turn.")] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Save the chat under this name in the home; resume it later."),
    ] = None,
) -> None:
    """A multi-turn chat over the documents; history is bounded (last turns + a capped summary) and counted.
    Empty line or Ctrl-D ends."""
    from ragcli.errors import InputError
    from ragcli.generation.conversation import Conversation
    from ragcli.pipelines.query_pipeline import QueryOptions, answer, check_question
    from ragcli.pipelines.stages import Stages
    from ragcli.types import Usage

    with errors():
        cfg = load(config, collection)
        stages = Stages.from_config(cfg)
        open_store(stages)
        count = stages.llm.count_tokens
        history = {
            "window_turns": cfg.chat.window_turns,
            "summary_cap_tokens": cfg.chat.summary_cap_tokens,
            "summarizer": chat_summarizer(cfg, stages),
        }
        conv = (
            Conversation.open(cfg.home_dir(), session, count, **history)
            if session
            else Conversation(count, **history)
        )
        if conv.turns:
            out.print(f"[dim]resumed session {session}: {len(conv.turns)} turns[/dim]")
        total = Usage()
        try:
            while True:
                release_store(stages)  # an idle chat must not lock other commands out of the store
                try:
                    line = input("you> ").strip()
                except EOFError:
                    break
                if not line:
                    break
                try:
                    check_question(line, stages)
                except InputError as exc:  # one bad turn does not end the chat
                    err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
                    continue
                out.print("bot> ", end="")
                streamer = _Streamer()
                opts = QueryOptions(
                    where=where,
                    history=conv.history(),
                    retrieval_query=conv.retrieval_query(line),
                    on_token=streamer,
                )
                ans = answer(line, stages, opts)
                if streamer.used:
                    out.print()
                _print_answer(ans, streamed=streamer.used)
                total = total + ans.usage
                turn = conv.add(line, ans.text)
                out.print(
                    f"[dim]history: {turn.sent_tokens} tokens carried to the next turn, "
                    f"{turn.saved_tokens} saved vs the whole transcript[/dim]"
                )
        finally:
            stages.close()
        usd = "unknown" if total.usd is None else f"${total.usd:.6f}"
        share = total.cached_tokens / total.input_tokens if total.input_tokens else 0.0
        out.print(
            f"[dim]session: {total.calls} calls, {total.input_tokens} input tokens "
            f"({share:.0%} read from the provider's prompt cache), cost {usd}[/dim]"
        )


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
        "skipped": [{"path": f.path, "reason": f.reason} for f in report.skipped],
    }


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files and folders to ingest.", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            help="Metadata for every chunk: key=value (repeatable). A file's own front matter or sidecar "
            "value for the same key wins (a warning names each such file).",
        ),
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
    from ragcli.ingest.file_checks import check_meta_values, meta_overridden
    from ragcli.pipelines.ingest_pipeline import IngestProgress, collect_files, ingest, parse_meta
    from ragcli.pipelines.stages import Stages

    with errors():
        if not paths:
            raise InputError("no paths given; run `ragcli ingest PATH...` with one or more files or folders")
        user_meta = parse_meta(meta or [])
        check_meta_values(user_meta)
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            raise InputError(
                f"path not found: {', '.join(missing)}; check the spelling, or pass an existing "
                "file or folder"
            )
        cfg = load(config, collection)
        files = collect_files(paths, skip_hidden=cfg.ingest.skip_hidden)
        for line in meta_overridden(files, {**cfg.ingest.metadata, **user_meta}):
            warn(line)
        stages = Stages.from_config(cfg)
        open_store(stages)
        bar = Progress(
            TextColumn("ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", markup=False),  # file names may hold [brackets]
            console=err,
            transient=True,
        )
        task = bar.add_task("", total=None)

        shown = [0.0]

        def on_progress(p: IngestProgress) -> None:
            # A big file moves the bar by its chunks written, not only when it is done (events can come late
            # for earlier files, whose chunks are batched with later ones: the bar never moves back).
            name = Path(p.path).name[:40]
            done = float(p.files_done)
            if p.chunks_total:
                done = p.files_done - 1 + p.chunks_done / p.chunks_total
                name += f"  {p.chunks_done:,}/{p.chunks_total:,} chunks"
            shown[0] = max(shown[0], done)
            bar.update(task, completed=shown[0], total=p.files_total, description=name)

        try:
            with bar:
                report = ingest(paths, stages, meta=user_meta, prune=prune, progress=on_progress)
        finally:
            stages.close()
        summary = _ingest_summary(report, cfg.collection)
        for item in summary["skipped"]:
            warn(f"{item['path']}: {item['reason']}")
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
                out.print(
                    f"[red]failed[/red] {escape(item['path'])}: {escape(item['reason'])}",
                    highlight=False,
                    soft_wrap=True,
                )
            for item in summary["empty"]:
                out.print(
                    f"[yellow]empty[/yellow] {escape(item['path'])}: {escape(item['reason'])}",
                    highlight=False,
                    soft_wrap=True,
                )
        if summary["failures"]:
            raise typer.Exit(EXIT_PARTIAL)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
