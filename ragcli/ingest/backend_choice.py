"""Which back-end embeds a large batch fastest on this CPU: measured once per machine, then remembered.

Neither back-end wins everywhere (benchmarks/results/ingest.md, 2026-12-02): on an AMD EPYC host under load ONNX
Runtime was 1.22x torch; on an Intel Xeon host with AVX-512 and a quiet CPU torch was 1.3-1.6x ONNX Runtime. So
`embedder.backend: fastest` measures instead of guessing: the first large batch a process embeds (an ingest) times
both back-ends on the same chunk-sized synthetic texts, alternating, and keeps the best time of each (the best of a few
runs is what the hardware can do; the other jobs of a shared machine only add noise). Small batches (a query) stay
on ONNX Runtime whatever the choice, so a query never pays torch's import. The choice is written to
`<home>/onnx/backend-choice.json`, keyed by the CPU, the core count, the package versions and the model, so each
machine measures once (about 10-15 s, torch's import included). It is not the default (`auto` stays on ONNX
Runtime): torch costs an ingest ~200 MB more memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ragcli.ingest.onnx_encoder import usable_cores
from ragcli.resources import cache_dir

log = logging.getLogger(__name__)

CHOICE_FILE = "backend-choice.json"
TORCH_MARGIN = 1.05
"""torch must be this much faster to be chosen: ONNX Runtime needs no torch at run time."""

_TEXT = (
    "the protein expression of cells was measured in patients with chronic disease and compared to controls "
    "results show a significant increase in risk after treatment across all groups while the effect of dose "
    "remained unclear in older adults our analysis suggests that further trials are needed to confirm"
)
_WORDS = _TEXT.split()


def _cpu_signature() -> str:
    """The CPU model and the vector-instruction flags that decide kernel speed (Linux `/proc/cpuinfo`)."""
    model, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = " ".join(
                    sorted(f for f in value.split() if f.startswith(("avx", "amx", "fma")) or f == "f16c")
                )
    except OSError:
        pass
    return f"{model} | {flags} | cores={usable_cores()}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine_key(model_key: str) -> str:
    parts = [_cpu_signature(), _version("onnxruntime"), _version("torch"), model_key]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def sample_texts(n: int = 32, words: int = 180) -> list[str]:
    """Deterministic chunk-sized texts (~200-230 MiniLM tokens each: a full chunk, where the back-ends differ most)."""
    return [" ".join(_WORDS[(i * 7 + j) % len(_WORDS)] for j in range(words)) for i in range(n)]


def pass_seconds(encode: Callable[[Sequence[str]], Any], texts: list[str], batch: int) -> float:
    """Seconds of one pass of `encode` over `texts` in batches of `batch`."""
    t0 = time.perf_counter()
    for s in range(0, len(texts), batch):
        encode(texts[s : s + batch])
    return time.perf_counter() - t0


def choose_bulk_backend(
    model_key: str,
    encoders: dict[str, Callable[[], Callable[[Sequence[str]], Any]]],
    *,
    rounds: int = 4,
    batch: int = 32,
) -> str:
    """`onnx` or `torch`: the remembered choice for this machine, else measured now and remembered.

    Args:
        model_key: identifies the model (its folder and weights).
        encoders: back-end name -> a function that loads it and returns its batch encode function.
    """
    path = cache_dir("onnx") / CHOICE_FILE
    key = machine_key(model_key)
    saved = _read(path)
    entry = saved.get(key)
    if isinstance(entry, dict) and entry.get("backend") in encoders:
        return str(entry["backend"])
    texts = sample_texts()
    loaded: dict[str, Callable[[Sequence[str]], Any]] = {}
    for name, load in encoders.items():
        try:
            encode = load()
            encode(texts[:batch])  # warm-up: first-call allocations and lazy kernel selection
            loaded[name] = encode
        except Exception as exc:  # a back-end that cannot load or run is simply not a candidate
            log.warning("embedding back-end %s not measured: %s", name, exc)
    if not loaded:
        return "onnx"
    times = {name: float("inf") for name in loaded}
    for _ in range(rounds):
        for name, encode in loaded.items():
            times[name] = min(times[name], pass_seconds(encode, texts, batch))
    onnx_s, torch_s = times.get("onnx", float("inf")), times.get("torch", float("inf"))
    choice = "torch" if torch_s * TORCH_MARGIN < onnx_s else "onnx"
    if choice not in loaded:
        choice = next(iter(loaded))
    saved[key] = {
        "backend": choice,
        "seconds": {k: round(v, 4) for k, v in times.items()},
        "texts": len(texts),
        "cpu": _cpu_signature(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write(path, saved)
    log.warning(
        "embedding back-end for large batches on this machine: %s (best of %d: %s); remembered in %s",
        choice,
        rounds,
        ", ".join(f"{k} {v:.2f}s" for k, v in times.items()),
        path,
    )
    return choice


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only home: measure again next time, never fail the ingest
        log.warning("could not remember the embedding back-end choice in %s: %s", path, exc)
