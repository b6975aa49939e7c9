"""The `ragcli cost` tools beyond totals: `report` (HTML), `forecast`, `replay` (what-if) and `breakeven`.

Registered on `cost_app` in `cli_cost.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragcli.cli_support import ConfigOpt, JsonOpt, errors, load, out, output_file, print_json

if TYPE_CHECKING:
    from ragcli.cost.ledger_reader import CallRecord
    from ragcli.cost.prices import PriceTable

SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only calls from this day on (YYYY-MM-DD or an ISO time).")
]


def _usd(x: float | None) -> str:
    return "unknown" if x is None else f"${x:,.2f}" if x >= 100 else f"${x:,.6f}"


def _calls(config: str | None, since: str | None) -> tuple[Path, list[CallRecord], PriceTable]:
    from ragcli.cost.ledger import ledger_path
    from ragcli.cost.ledger_reader import read_calls
    from ragcli.cost.prices import PriceTable

    cfg = load(config)
    path = ledger_path(cfg)
    return path, read_calls(path, since), PriceTable.load(cfg.cost)


def report_cmd(
    html_file: Annotated[str, typer.Option("--html", help="Write the report to this HTML file.")],
    price_as: Annotated[
        str | None,
        typer.Option("--price-as", help="What-if: price every LLM call as this model (e.g. gpt-4o-mini)."),
    ] = None,
    since: SinceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write one self-contained HTML page (no network) with charts of where the money went."""
    from ragcli.cost.html_report import build_data, render
    from ragcli.cost.ledger_reader import read_parts

    with errors():
        path, calls, prices = _calls(config, since)
        data = build_data(calls, read_parts(path), str(path), prices, price_as)
        output_file(html_file, "--html").write_text(render(data, prices), encoding="utf-8")
        out.print(f"wrote {html_file} ({len(calls)} calls from {path})", highlight=False)


def forecast_cmd(
    queries_per_day: Annotated[int, typer.Option("--queries-per-day", help="Queries a day to forecast.")],
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Price the LLM calls as this model (repeatable).")
    ] = None,
    cached_share: Annotated[
        float | None,
        typer.Option(
            "--cached-share", help="Share of input tokens read from the provider cache (default: measured)."
        ),
    ] = None,
    embed_model: Annotated[
        str | None,
        typer.Option("--embed-model", help="Price query embeddings as this model (default: free)."),
    ] = None,
    since: SinceOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecast daily and monthly cost from the ledger's real per-query token profile."""
    from ragcli.cost.forecast import forecast, profile

    with errors():
        cfg = load(config)
        _, calls, prices = _calls(config, since)
        prof = profile(calls)
        models = model or [cfg.llm.model]
        results = [
            forecast(prof, prices, m, queries_per_day, cached_share=cached_share, embed_model=embed_model)
            for m in models
        ]
        if as_json:
            print_json(
                {
                    "profile": prof,
                    "forecasts": [
                        {
                            "model": f.model,
                            "queries_per_day": f.queries_per_day,
                            "cached_share": f.cached_share,
                            "usd_per_query": f.usd_per_query,
                            "usd_per_day": f.usd_per_day,
                            "usd_per_month": f.usd_per_month,
                        }
                        for f in results
                    ],
                }
            )
            return
        out.print(
            f"profile of {prof.queries} queries: {prof.llm_calls:.2f} LLM calls, {prof.input_tokens:,.0f} input "
            f"tokens ({prof.cached_share:.0%} cached), {prof.output_tokens:,.0f} output tokens, "
            f"{prof.embed_tokens:,.0f} embedding tokens per query",
            highlight=False,
        )
        t = Table(title=f"forecast for {queries_per_day:,} queries a day")
        for col in ("model", "cached share", "per query", "per day", "per month"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for f in results:
            t.add_row(
                f.model,
                f"{f.cached_share:.0%}",
                _usd(f.usd_per_query),
                _usd(f.usd_per_day),
                _usd(f.usd_per_month),
            )
        out.print(t)


def replay_cmd(
    model: Annotated[
        list[str], typer.Option("--model", help="Reprice the recorded LLM calls as this model.")
    ],
    since: SinceOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What-if: what the ledger's recorded LLM calls would have cost under another model's prices."""
    from ragcli.cost.forecast import replay

    with errors():
        _, calls, prices = _calls(config, since)
        results = [replay(calls, prices, m) for m in model]
        if as_json:
            print_json(results)
            return
        t = Table(title="recorded LLM calls, repriced")
        for col in ("model", "calls", "recorded", "as this model"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for r in results:
            rec = _usd(r.recorded_usd) + (f" + {r.recorded_unknown} unknown" if r.recorded_unknown else "")
            t.add_row(r.model, str(r.calls), rec, _usd(r.replayed_usd))
        out.print(t)


def breakeven_cmd(
    gpu_usd_per_hour: Annotated[
        float, typer.Option("--gpu-usd-per-hour", help="Rent of the GPU node, e.g. 38 for an 8-GPU node.")
    ],
    tokens_per_second: Annotated[
        float | None,
        typer.Option(
            "--tokens-per-second",
            help="Prompt + output tokens/s the node serves (default: measured from the ledger's local LLM calls).",
        ),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="The API model to compare with.")] = "gpt-4o-mini",
    since: SinceOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Self-hosting against an API: monthly rent, capacity, and the query volume where they cost the same."""
    from ragcli.cost.forecast import break_even, forecast, measured_tokens_per_second, profile
    from ragcli.errors import InputError

    with errors():
        _, calls, prices = _calls(config, since)
        prof = profile(calls)
        tps = tokens_per_second or measured_tokens_per_second(calls)
        if not tps:
            raise InputError("no local LLM calls with timings in the ledger; pass --tokens-per-second")
        api = forecast(prof, prices, model, 1).usd_per_query
        be = break_even(gpu_usd_per_hour, tps, prof.input_tokens + prof.output_tokens, api)
        if as_json:
            print_json(be)
            return
        out.print(
            f"self-hosting at ${be.gpu_usd_per_hour:g}/h: ${be.self_host_usd_per_month:,.0f} a month; at "
            f"{be.tokens_per_second:,.0f} tokens/s and {be.tokens_per_query:,.0f} tokens a query it serves up to "
            f"{be.capacity_queries_per_day:,.0f} queries a day",
            highlight=False,
        )
        if be.break_even_queries_per_day is None:
            out.print(f"{model}: price unknown or zero, no break-even", highlight=False)
        else:
            fits = (
                "within one node's capacity"
                if be.break_even_queries_per_day <= be.capacity_queries_per_day
                else "beyond one node's capacity: the API stays cheaper at any volume one node can serve"
            )
            out.print(
                f"{model} costs {_usd(be.api_usd_per_query)} a query: self-hosting is cheaper above "
                f"{be.break_even_queries_per_day:,.0f} queries a day ({fits})",
                highlight=False,
            )
