"""Shared helpers of the ingest benchmarks: data dir, machine facts, token F1, results file sections."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "ingest.md"
_WORD = re.compile(r"\w+", re.UNICODE)


def default_data() -> Path:
    return Path(os.environ.get("RAGCLI_DATA") or REPO.parent / "shared" / "data")


def machine() -> str:
    try:
        cpu = next(
            ln.split(":", 1)[1].strip()
            for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if ln.startswith("Model name")
        )
    except (StopIteration, OSError):
        cpu = "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, shared with concurrent jobs of four other engineers"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()


_STARTED = (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), commit())


def header(command: str) -> str:
    """Command, start time, the commit the run started on (the code it ran), machine."""
    return (
        f"- command: `{command}`\n- started: {_STARTED[0]}, finished: {time.strftime('%H:%M UTC', time.gmtime())}\n"
        f"- commit: {_STARTED[1]}\n- machine: {machine()}\n"
    )


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: record them beside every timing)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_f1(pred: str, gold: str) -> tuple[float, float, float]:
    """Bag-of-words precision, recall and F1 (SQuAD-style token overlap)."""
    p, g = Counter(tokens(pred)), Counter(tokens(gold))
    common = sum((p & g).values())
    if not common:
        return 0.0, 0.0, 0.0
    prec, rec = common / sum(p.values()), common / sum(g.values())
    return prec, rec, 2 * prec * rec / (prec + rec)


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section `## name` of benchmarks/results/ingest.md."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = RESULTS.read_text() if RESULTS.exists() else "# Ingest benchmarks\n\n"
    marker = f"## {name}\n"
    section = marker + "\n" + body.strip() + "\n\n"
    if marker in text:
        start = text.index(marker)
        nxt = text.find("\n## ", start + len(marker))
        text = text[:start] + section + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
