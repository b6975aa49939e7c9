"""`ragcli cost report --html`: one self-contained page (inline CSS and SVG, no script, no network) that shows
where the money went: spend over time by stage and by model, tokens and dollars by prompt part, savings against
the counterfactual, and the costliest queries.

With `price_as`, the LLM calls are repriced at that model (a what-if replay): a local run then shows what the same
traffic would cost at an API, with the recorded dollars beside it.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ragcli.cost.attribution import Group, group_calls, group_parts, split_parts, total_of
from ragcli.cost.forecast import is_llm
from ragcli.cost.ledger import recorded_usage
from ragcli.cost.ledger_reader import CallRecord, PartRecord
from ragcli.cost.prices import PriceTable
from ragcli.types import Usage

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1080px;
color:#1d2330;background:#fafbfc;padding:0 16px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6472;margin:0 0 16px}.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e6ea;
border-radius:8px;padding:10px 14px;min-width:150px}.card b{display:block;font-size:20px}.card span{color:#5b6472;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;
text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f1f3f5}svg{background:#fff;border:1px solid #e3e6ea;
border-radius:8px;width:100%;height:auto}.note{color:#5b6472;font-size:12px}.warn{color:#a0522d}.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
"""


@dataclass(frozen=True)
class ReportData:
    """What the page shows, computed from the ledger rows (and repriced when `price_as` is set)."""

    calls: list[CallRecord]
    parts: list[PartRecord]
    ledger_path: str
    price_as: str | None
    recorded_usd: float


def reprice(calls: Sequence[CallRecord], prices: PriceTable, model: str) -> list[CallRecord]:
    """The calls with every billed LLM call priced at `model` (its recorded tokens kept)."""
    out = []
    for r in calls:
        if r.billed and is_llm(r):
            usd = prices.priced(model, recorded_usage(r, None)).usd
            r = replace(r, usd=usd, model=f"{r.model} as {model}")
        out.append(r)
    return out


def _reprice_parts(
    parts: Sequence[PartRecord], new: Sequence[CallRecord], prices: PriceTable, model: str
) -> list[PartRecord]:
    """Each repriced call's parts split again at the new model's rates (same rule as at record time)."""
    by_call: dict[int, dict[str, int]] = defaultdict(dict)
    for p in parts:
        if p.part != "output":
            by_call[p.call_id][p.part] = p.tokens
    calls = {r.id: r for r in new}
    price = prices.price(model)
    out: list[PartRecord] = []
    for call_id, tokens in by_call.items():
        r = calls.get(call_id)
        if r is None:
            continue
        split = split_parts(tokens, recorded_usage(r, r.usd), price)
        out += [PartRecord(call_id, name, n, usd) for name, n, usd in split]
    return out


def build_data(
    calls: Sequence[CallRecord],
    parts: Sequence[PartRecord],
    ledger_path: str,
    prices: PriceTable | None = None,
    price_as: str | None = None,
) -> ReportData:
    recorded = sum(r.usd or 0.0 for r in calls if r.billed)
    if price_as and prices is not None:
        new = reprice(calls, prices, price_as)
        return ReportData(new, _reprice_parts(parts, new, prices, price_as), ledger_path, price_as, recorded)
    return ReportData(list(calls), list(parts), ledger_path, None, recorded)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _usd(x: float | None) -> str:
    if x is None:
        return "unknown"
    return f"${x:,.2f}" if abs(x) >= 100 else f"${x:,.6f}".rstrip("0").rstrip(".") if x else "$0"


def _buckets(calls: Sequence[CallRecord]) -> tuple[str, list[str]]:
    """Days when the ledger spans more than two days, hours otherwise (a one-day run still shows its shape)."""
    days = sorted({r.day for r in calls})
    if len(days) > 2:
        return "day", days
    return "hour", sorted({r.ts[:13] for r in calls})


def _stacked_bars(calls: Sequence[CallRecord], series_of: str, value: str, width: int = 1040) -> str:
    """A stacked bar chart: x = time bucket, stacks = `series_of` (stage or model), y = dollars or tokens."""
    unit, keys = _buckets(calls)
    cut = 10 if unit == "day" else 13
    data: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    series: dict[str, float] = defaultdict(float)
    for r in calls:
        if not r.billed:
            continue
        v = (r.usd or 0.0) if value == "usd" else float(r.input_tokens + r.output_tokens)
        name = str(getattr(r, series_of)) or "(none)"
        data[r.ts[:cut]][name] += v
        series[name] += v
    names = [n for n, _ in sorted(series.items(), key=lambda kv: -kv[1])][: len(PALETTE)]
    height, left, bottom, top = 260, 70, 40, 12
    peak = max((sum(data[k].values()) for k in keys), default=0.0) or 1.0
    plot_w = width - left - 12
    bw = max(plot_w / max(len(keys), 1) * 0.7, 2)
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i in range(5):
        y = top + (height - top - bottom) * i / 4
        label = peak * (1 - i / 4)
        text = _usd(label) if value == "usd" else f"{label:,.0f}"
        out.append(f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceef1"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#5b6472">{_e(text)}</text>'
        )
    for i, k in enumerate(keys):
        x = left + plot_w * (i + 0.15) / max(len(keys), 1)
        y = height - bottom
        for j, n in enumerate(names):
            v = data[k].get(n, 0.0)
            h = (height - top - bottom) * v / peak
            if h > 0:
                y -= h
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{PALETTE[j]}">'
                    f"<title>{_e(k)} {_e(n)}: {_e(_usd(v) if value == 'usd' else f'{v:,.0f} tokens')}</title></rect>"
                )
        if len(keys) <= 16 or i % max(len(keys) // 12, 1) == 0:
            tick = k[5:] if unit == "day" else k[5:].replace("T", " ") + "h"
            out.append(
                f'<text x="{x + bw / 2:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle" '
                f'fill="#5b6472">{_e(tick)}</text>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{PALETTE[j]}"></i>{_e(n)}</span>' for j, n in enumerate(names)
    )
    return "".join(out) + f'<div class="legend">{legend}</div>'


def _hbars(rows: Sequence[tuple[str, float, str]], width: int = 1040) -> str:
    """Horizontal bars: (label, value, text shown at the bar's end)."""
    peak = max((v for _, v, _ in rows), default=0.0) or 1.0
    h = 24 * len(rows) + 10
    out = [f'<svg width="{width}" height="{h}" viewBox="0 0 {width} {h}" role="img">']
    for i, (label, v, text) in enumerate(rows):
        y = 6 + 24 * i
        w = (width - 380) * v / peak
        out.append(f'<text x="8" y="{y + 14}" font-size="12">{_e(label)}</text>')
        out.append(f'<rect x="150" y="{y}" width="{w:.1f}" height="18" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{156 + w:.1f}" y="{y + 14}" font-size="11" fill="#333">{_e(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _group_rows(groups: Sequence[Group]) -> list[list[object]]:
    return [
        [
            g.key,
            g.calls,
            f"{g.input_tokens:,}",
            f"{g.cached_tokens:,}",
            f"{g.output_tokens:,}",
            _usd(g.usd) + (f" + {g.unknown_cost_calls} unknown" if g.unknown_cost_calls else ""),
            g.hidden_calls,
        ]
        for g in groups
    ]


def _savings(data: ReportData, prices: PriceTable | None) -> tuple[list[tuple[str, float, str]], str]:
    """Dollars saved by each lever against its counterfactual (ledger column `saved_usd`), and by the provider's
    prompt cache (cached tokens at the full input rate minus what they were billed)."""
    by_lever: dict[str, float] = defaultdict(float)
    for r in data.calls:
        if r.billed and r.saved_usd:
            by_lever[r.lever or "other"] += r.saved_usd
    prompt_cache = 0.0
    if prices is not None:
        for r in data.calls:
            if not (r.billed and r.cached_tokens):
                continue
            model = data.price_as if data.price_as and is_llm(r) else r.model
            p = prices.price(model)
            if p is not None:
                full = p.cost_of(Usage(input_tokens=r.cached_tokens, calls=1, batch=r.batch))
                paid = p.cost_of(
                    Usage(input_tokens=r.cached_tokens, cached_tokens=r.cached_tokens, calls=1, batch=r.batch)
                )
                prompt_cache += full - paid
    rows = [("provider prompt cache", prompt_cache, _usd(prompt_cache))]
    for lever in ("cache", "routing", "compression"):
        v = by_lever.pop(lever, 0.0)
        rows.append((f"{lever}", v, _usd(v) if v else "none recorded"))
    rows += [(k, v, _usd(v)) for k, v in sorted(by_lever.items())]
    note = (
        "Savings are read from the ledger's saved_usd/lever columns, written by the levers that avoid or shrink a "
        "call (answer cache, routing, compression) against the call they replaced; 'none recorded' means no lever "
        "wrote any in this ledger."
    )
    return rows, note


def render(data: ReportData, prices: PriceTable | None = None, title: str = "ragcli cost report") -> str:
    """The whole page as one HTML string."""
    calls = data.calls
    total = total_of(group_calls(calls, "stage"))
    parts = group_parts(calls, data.parts)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    span = f"{calls[0].ts[:16]} to {calls[-1].ts[:16]}" if calls else "no calls"
    cached_share = total.cached_tokens / total.input_tokens if total.input_tokens else 0.0
    what_if = (
        f'<p class="note">What-if: every LLM call is priced as <b>{_e(data.price_as)}</b> with its recorded tokens '
        f"(recorded spend: {_e(_usd(data.recorded_usd))}). Embedding and rerank calls keep their own prices.</p>"
        if data.price_as
        else ""
    )
    cards = [
        (_usd(total.usd), "spend" + (f" as {data.price_as}" if data.price_as else "")),
        (f"{len(total.queries):,}", "queries"),
        (f"{total.calls:,}", "billed calls"),
        (f"{total.input_tokens + total.output_tokens:,}", "tokens"),
        (f"{cached_share:.1%}", "input read from provider cache"),
        (f"{total.hidden_calls:,}", "hidden calls (not asked for directly)"),
        (f"{total.unknown_cost_calls:,}", "calls of unknown price (not in spend)"),
        (f"{total.refused_calls:,}", "calls refused by a budget"),
    ]
    card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
    unknown = (
        f'<p class="warn">{total.unknown_cost_calls} call(s) used models with no known price: the spend above leaves '
        "them out (add their prices under cost.prices).</p>"
        if total.unknown_cost_calls
        else ""
    )
    part_rows = [
        (g.key, g.usd, f"{_usd(g.usd)} · {g.input_tokens + g.output_tokens:,} tokens") for g in parts
    ]
    part_tok_rows = [
        (g.key, float(g.input_tokens + g.output_tokens), f"{g.input_tokens + g.output_tokens:,} tokens")
        for g in parts
    ]
    savings, savings_note = _savings(data, prices)
    per_query: dict[str, Group] = {}
    for r in calls:
        if r.query_id:
            per_query.setdefault(r.query_id, Group(r.query_id)).add(r)
    first_ts = {r.query_id: r.ts for r in reversed(calls) if r.query_id}
    top = sorted(per_query.values(), key=lambda g: (-g.usd, -g.tokens))[:10]
    top_rows = [
        [
            g.key,
            first_ts.get(g.key, "")[:19],
            g.calls,
            f"{g.input_tokens:,}",
            f"{g.output_tokens:,}",
            _usd(g.usd),
        ]
        for g in top
    ]
    sections = [
        f"<h1>{_e(title)}</h1><p class='sub'>ledger {_e(data.ledger_path)} · {_e(span)} · written {_e(now)}</p>",
        what_if,
        f'<div class="cards">{card_html}</div>',
        unknown,
        "<h2>Spend over time by stage</h2>",
        _stacked_bars(calls, "stage", "usd"),
        "<h2>Spend over time by model</h2>",
        _stacked_bars(calls, "model", "usd"),
        "<h2>Tokens over time by stage</h2>",
        _stacked_bars(calls, "stage", "tokens"),
        "<h2>Tokens by prompt part</h2>",
        _hbars(part_tok_rows),
        "<h2>Dollars by prompt part</h2>",
        _hbars(part_rows),
        '<p class="note">A call\'s dollars are split over its parts in prompt order (the provider cache reads the '
        "prefix first); calls recorded without parts (embeddings, rerankers, older ledgers) stay whole as "
        "'unattributed'.</p>",
        "<h2>Savings against the counterfactual</h2>",
        _hbars(savings),
        f'<p class="note">{_e(savings_note)}</p>',
        "<h2>Costliest queries</h2>",
        _table(["query", "time (UTC)", "calls", "input", "output", "dollars"], top_rows),
        "<h2>By stage</h2>",
        _table(
            ["stage", "calls", "input", "cached", "output", "dollars", "hidden"],
            _group_rows(group_calls(calls, "stage")),
        ),
        "<h2>By model</h2>",
        _table(
            ["model", "calls", "input", "cached", "output", "dollars", "hidden"],
            _group_rows(group_calls(calls, "model")),
        ),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<link rel='icon' href='data:,'><meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )
