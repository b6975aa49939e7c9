"""`ragcli cost ...`: what was spent and where (by stage, model, prompt part, tenant, preset, day), exports,
price look-ups, an HTML report, forecasts, what-if replays and the self-hosting break-even.

`ragcli cost` alone prints totals by day, as it always has.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ragcli.cli_support import ConfigOpt, JsonOpt, err, errors, load, out, output_file, print_json

cost_app = typer.Typer(
    help="What was spent, where, and what it would cost elsewhere (ledger totals, prices, report, forecast).",
    invoke_without_command=True,
)

SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only calls from this day on (YYYY-MM-DD or an ISO time).")
]


def _ledger_file(config: str | None) -> Path:
    from ragcli.cost.ledger import ledger_path

    return ledger_path(load(config))


def _fmt_usd(usd: float, unknown: int) -> str:
    text = f"${usd:.6f}"
    if unknown:
        text += f" + unknown ({unknown} {'call' if unknown == 1 else 'calls'})"
    return text


def _group_dict(g: Any) -> dict[str, Any]:
    return {
        "key": g.key,
        "calls": g.calls,
        "input_tokens": g.input_tokens,
        "cached_tokens": g.cached_tokens,
        "cache_write_tokens": g.cache_write_tokens,
        "output_tokens": g.output_tokens,
        "usd": round(g.usd, 10),
        "usd_complete": g.unknown_cost_calls == 0,
        "unknown_cost_calls": g.unknown_cost_calls,
        "hidden_calls": g.hidden_calls,
        "refused_calls": g.refused_calls,
        "saved_usd": round(g.saved_usd, 10),
        "queries": len(g.queries),
    }


def _export(rows: list[dict[str, Any]], csv_file: str | None, parquet_file: str | None) -> None:
    from ragcli.errors import InputError

    if csv_file:
        with output_file(csv_file, "--csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["key"])
            writer.writeheader()
            writer.writerows(rows)
        err.print(f"wrote {len(rows)} rows to {csv_file}", highlight=False, markup=False)
    if parquet_file:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(
                "--parquet needs pyarrow, which is not installed; run `pip install pyarrow`, or use --csv FILE"
            ) from None
        pq.write_table(pa.Table.from_pylist(rows), str(output_file(parquet_file, "--parquet")))
        err.print(f"wrote {len(rows)} rows to {parquet_file}", highlight=False, markup=False)


@cost_app.callback()
def cost(
    ctx: typer.Context,
    by: Annotated[
        str, typer.Option("--by", help="Group by day, model, stage, part, tenant, preset or provider.")
    ] = "day",
    since: SinceOpt = None,
    csv_file: Annotated[
        str | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
    parquet_file: Annotated[
        str | None,
        typer.Option("--parquet", help="Also write the table to this Parquet file (needs pyarrow)."),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what was spent: calls, input/cached/output tokens and dollars from the ledger."""
    if ctx.invoked_subcommand is not None:
        return
    from ragcli.cost.attribution import BY, group_calls, group_parts, total_of
    from ragcli.cost.ledger_reader import read_calls, read_parts
    from ragcli.errors import InputError

    with errors():
        if by not in BY:
            raise InputError(f"--by {by!r} is not a grouping; use one of: {', '.join(BY)}")
        path = _ledger_file(config)
        if not path.is_file():
            if as_json:
                print_json({"by": by, "since": since, "ledger": str(path), "groups": [], "total": None})
            else:
                out.print(f"no calls recorded yet (ledger {path})", highlight=False, markup=False)
            return
        calls = read_calls(path, since)
        groups = group_parts(calls, read_parts(path)) if by == "part" else group_calls(calls, by)
        total = total_of(groups)
        if by == "part":  # a call is split over its parts: the total counts each call once, not once per part
            split = [r for r in calls if r.billed and (r.input_tokens or r.output_tokens)]
            total.calls = len(split)
            total.unknown_cost_calls = sum(1 for r in split if r.usd is None)
        rows = [_group_dict(g) for g in groups]
        from ragcli.cost.ledger import parse_since

        if as_json:
            print_json(
                {
                    "by": by,
                    "since": parse_since(since),
                    "ledger": str(path),
                    "groups": rows,
                    "total": {**_group_dict(total), "key": "total"},
                }
            )
        else:
            start = parse_since(since)
            table = Table(title=f"cost by {by}" + (f" since {start}" if start else ""))
            # what the levers saved (a cache hit's 0-dollar row carries the call it replaced), when any did
            saved = total.saved_usd > 0
            for col in (by, "calls", "input", "cached", "output", "usd", *(["saved"] if saved else [])):
                table.add_column(col, justify="left" if col == by else "right")
            for g in [*groups, total]:
                table.add_row(
                    g.key,
                    str(g.calls),
                    f"{g.input_tokens:,}",
                    f"{g.cached_tokens:,}",
                    f"{g.output_tokens:,}",
                    _fmt_usd(g.usd, g.unknown_cost_calls),
                    *([f"${g.saved_usd:.6f}"] if saved else []),
                    end_section=bool(groups) and g is groups[-1],
                )
            out.print(table)
            if total.unknown_cost_calls:
                out.print(
                    f"[yellow]{total.unknown_cost_calls} call(s) used models with no known price: the dollars "
                    "above leave them out; add their prices under cost.prices in the config[/yellow]"
                )
            if total.hidden_calls:
                out.print(
                    f"[dim]{total.hidden_calls} hidden call(s): made by ragcli, not asked for directly[/dim]"
                )
            out.print(f"[dim]ledger {escape(str(path))}[/dim]", highlight=False)
        _export(rows, csv_file, parquet_file)


@cost_app.command("prices")
def prices_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names, e.g. gpt-4o-mini claude-sonnet-4-5.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's price per million tokens, where it came from and as of when."""
    from ragcli.cost.prices import PriceTable
    from ragcli.errors import InputError

    with errors():
        table = PriceTable.load(load(config).cost)
        found: list[dict[str, Any]] = []
        for m in models:
            p = table.price(m)
            found.append(
                {"model": m, "known": False}
                if p is None
                else {
                    "model": m,
                    "known": True,
                    "priced_as": p.model,
                    "provider": p.provider,
                    "source": p.source,
                    "as_of": p.as_of,
                    "input": p.input,
                    "cached_input": p.cached_input,
                    "cache_write_5m": p.cache_write,
                    "cache_write_1h": p.cache_write_1h,
                    "output": p.output,
                    "batch_discount": p.batch_discount,
                    "context_window": p.context_window,
                }
            )
        if as_json:
            print_json(found)
        else:
            t = Table(title="dollars per million tokens")
            for col in (
                "model",
                "input",
                "cached",
                "write 5m",
                "write 1h",
                "output",
                "batch",
                "source",
                "as of",
            ):
                t.add_column(col, justify="left" if col in ("model", "source", "as of") else "right")
            for f in found:
                if not f["known"]:
                    t.add_row(f["model"], *["-"] * 6, "[red]unknown[/red]", "add it under cost.prices")
                    continue

                def n(x: float | None, base: Any = f["input"]) -> str:
                    return f"{base if x is None else x:g}"

                t.add_row(
                    f["model"]
                    + (f" ({f['priced_as']})" if f["priced_as"].lower() != f["model"].lower() else ""),
                    n(f["input"]),
                    n(f["cached_input"]),
                    n(f["cache_write_5m"]),
                    n(
                        f["cache_write_1h"],
                        f["cache_write_5m"] if f["cache_write_5m"] is not None else f["input"],
                    ),
                    n(f["output"]),
                    f"-{f['batch_discount']:.0%}" if f["batch_discount"] else "none",
                    f["source"] + (f" ({f['provider']})" if f["provider"] else ""),
                    f["as_of"],
                )
            out.print(t)
        if not any(f["known"] for f in found):
            raise InputError(
                f"no price known for {', '.join(models)}; add it under cost.prices in the config "
                "(dollars per million tokens: input, output)"
            )


from ragcli.cli_cost_tools import breakeven_cmd, forecast_cmd, replay_cmd, report_cmd  # noqa: E402

cost_app.command("report")(report_cmd)
cost_app.command("forecast")(forecast_cmd)
cost_app.command("replay")(replay_cmd)
cost_app.command("breakeven")(breakeven_cmd)

__all__ = ["cost_app"]
