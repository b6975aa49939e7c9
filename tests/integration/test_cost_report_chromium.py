"""The HTML cost report opened in headless Chromium (Debian's `chromium`): it renders its charts with no console
error. Skips, with the reason, where chromium is not installed (CI installs it: apt-get install -y chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from ragcli.config import CostConfig
from ragcli.cost.html_report import build_data, render
from ragcli.cost.ledger import Ledger, LedgerRow
from ragcli.cost.ledger_reader import read_calls, read_parts
from ragcli.cost.prices import PriceTable
from ragcli.types import Usage

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
_CONSOLE = re.compile(r":CONSOLE[:(]")


def open_in_chromium(page: Path, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """The DOM Chromium built from the page, and the console messages it logged."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        args = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2600",
        ]
        args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        done = subprocess.run([*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return done.stdout, console


@needs_chromium
def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><body><script>undefinedFunction()</script></body></html>")
    _, console = open_in_chromium(bad)
    assert any("undefinedFunction" in line for line in console)


@needs_chromium
def test_report_renders_in_chromium_with_no_console_error(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    with Ledger(ledger) as led:
        for i in range(30):
            ts = f"2026-01-{1 + i // 10:02d}T{10 + i % 10:02d}:00:00.000+00:00"
            led.record(
                replace(
                    LedgerRow.of("embed", "all-MiniLM-L6-v2", Usage(12, 0, 0, 0.0, 1), 0.01, f"q{i}"), ts=ts
                )
            )
            u = Usage(900 + 10 * i, 256 * (i % 2), 40, 0.0003 + i * 1e-5, 1)
            led.record(replace(LedgerRow.of("llm", "gpt-4o-mini", u, 0.4, f"q{i}"), ts=ts))
        led.record(LedgerRow.of("llm", "mystery-model", Usage(10, 0, 5, None, 1), 0.1, "q99"))
    prices = PriceTable.load(CostConfig(use_litellm_prices=False))
    page = tmp_path / "report.html"
    page.write_text(
        render(build_data(read_calls(ledger), read_parts(ledger), str(ledger), prices, "gpt-4o"), prices)
    )
    dom, console = open_in_chromium(page)
    assert console == [], console
    assert dom.count("<svg") >= 5 and "Costliest queries" in dom and "Tokens by prompt part" in dom
    shot = tmp_path / "report.png"
    open_in_chromium(page, screenshot=shot)
    assert shot.is_file() and shot.stat().st_size > 10_000
