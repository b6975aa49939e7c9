"""Plumbing shared by the CLI's command modules: consoles, exit codes, option types, error handling, JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer, on click itself
    from click.exceptions import UsageError  # type: ignore[no-redef,assignment,unused-ignore]

from ragcli.errors import BackendError, RagError

out = Console()
err = Console(stderr=True)

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_PARTIAL = 2  # a batch finished but some files failed
EXIT_USAGE = 64  # bad input, config or arguments
EXIT_INTERRUPTED = 130

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="A YAML config file or a preset name (default: local).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Collection to use (overrides config).")
]

_state = {"verbose": False}


def set_verbose(verbose: bool) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        # said once by the command itself: the ingest report's skipped files; a corrupt PDF's failure line
        # (pypdf's own warnings about it would repeat per parse attempt)
        for name in ("ragcli.pipelines.ingest_pipeline.skipped", "pypdf"):
            logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def errors() -> Iterator[None]:
    """Turn library errors into one line and an exit code; tracebacks only with -v."""
    try:
        yield
    except typer.Exit:
        raise
    except (RagError, OSError) as exc:
        if _state["verbose"]:
            err.print_exception()
        code = EXIT_ERROR if isinstance(exc, BackendError | OSError) else EXIT_USAGE
        message = escape(str(exc).strip())  # file names and YAML errors hold [brackets] that are not markup
        err.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


class UsageExit64Group(TyperGroup):
    """The app's command group: a usage error (unknown option, bad value, missing argument) exits 64.

    Click exits 2 on usage errors, which the README reserves for an ingest that finished with failed files.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:
            exc.exit_code = EXIT_USAGE
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # raised while parsing a subcommand's arguments
            exc.exit_code = EXIT_USAGE
            raise


def warn(message: str) -> None:
    """One `warning: ...` line on stderr; the message is printed as is (no rich markup)."""
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def open_store(stages: Any) -> None:
    """Take the embedded store before any model loads: a store another process holds is found (and waited for,
    up to `store.lock_timeout_s`, saying so) before seconds go into loading models."""
    from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

    store = stages.store
    if isinstance(store, QdrantEdgeStore):
        store.on_wait = warn
        store.open()


def release_store(stages: Any) -> None:
    """Let go of the embedded store while the command waits for a person (chat), so other commands can use it."""
    from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

    store = stages.__dict__.get("store")  # never build a store just to close it
    if isinstance(store, QdrantEdgeStore):
        store.close()


def load(config: str | None, collection: str | None = None, llm_model: str | None = None) -> Any:
    """The config from a file or preset, offline defaults set, with the --collection and --model overrides.

    Overrides go through validation like the file's own keys, so a bad one is a config error, not a traceback.
    """
    from ragcli.config import load_config
    from ragcli.resources import offline_env

    offline_env()
    overrides: dict[str, Any] = {"collection": collection} if collection else {}
    if llm_model:
        overrides["llm"] = {"model": llm_model}
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


def finite_or_none(obj: Any) -> Any:
    """`obj` with every non-finite float (inf, -inf, nan) replaced by None, in nested dicts and lists: JSON has
    no such numbers (Python would write `Infinity`, which strict parsers and `JSON.parse` refuse)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def output_file(value: str | Path, flag: str) -> Path:
    """A file the command writes (`--csv`, `--html`, ...): its folder is made when missing; a folder given in its
    place is an input error naming the flag."""
    from ragcli.errors import InputError

    path = Path(value).expanduser()
    if path.is_dir():
        raise InputError(f"{flag} {str(value)!r} is a folder; give a file path, e.g. {str(path / 'out')!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {str(value)!r}: cannot make its folder ({exc.strerror})") from None
    return path


def print_json(obj: Any) -> None:
    """`obj` as strict JSON (`to_jsonable`; a non-finite number, e.g. a threshold none qualifies for, is null)."""
    data = finite_or_none(to_jsonable(obj))
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def progress_bar(label: str) -> Any:
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
