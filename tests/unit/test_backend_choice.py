"""The bulk embedding back-end choice: measured once per machine, remembered, robust to a back-end that fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragcli.ingest.backend_choice import CHOICE_FILE, choose_bulk_backend
from ragcli.resources import cache_dir


def sleeper(
    seconds_per_batch: float, calls: list[str], name: str
) -> Callable[[], Callable[[Sequence[str]], Any]]:
    def load() -> Callable[[Sequence[str]], Any]:
        calls.append(name)

        def encode(batch: Sequence[str]) -> None:
            time.sleep(seconds_per_batch)

        return encode

    return load


def test_the_faster_backend_is_chosen_and_remembered() -> None:
    calls: list[str] = []
    encoders = {"onnx": sleeper(0.004, calls, "onnx"), "torch": sleeper(0.001, calls, "torch")}
    assert choose_bulk_backend("model-a", encoders) == "torch"
    saved = json.loads((cache_dir("onnx") / CHOICE_FILE).read_text(encoding="utf-8"))
    (entry,) = saved.values()
    assert entry["backend"] == "torch" and entry["seconds"]["torch"] < entry["seconds"]["onnx"]
    calls.clear()
    assert choose_bulk_backend("model-a", encoders) == "torch"
    assert calls == []  # remembered: nothing loaded or measured again
    # another model is measured on its own
    slow_torch = {"onnx": sleeper(0.001, calls, "onnx"), "torch": sleeper(0.004, calls, "torch")}
    assert choose_bulk_backend("model-b", slow_torch) == "onnx"


def test_torch_needs_a_margin_and_a_failing_backend_is_skipped() -> None:
    calls: list[str] = []
    same = {"onnx": sleeper(0.002, calls, "onnx"), "torch": sleeper(0.002, calls, "torch")}
    assert choose_bulk_backend("model-c", same) == "onnx"  # a tie keeps ONNX Runtime (no torch import)

    def broken() -> Callable[[Sequence[str]], Any]:
        raise ImportError("no torch here")

    assert choose_bulk_backend("model-d", {"onnx": sleeper(0.003, calls, "onnx"), "torch": broken}) == "onnx"

    def fails_to_run() -> Callable[[Sequence[str]], Any]:
        def encode(batch: Sequence[str]) -> None:
            raise RuntimeError("kernel crashed")

        return encode

    # a back-end that loads but cannot run is no candidate either (it used to stay in and raise while measured)
    assert (
        choose_bulk_backend("model-f", {"onnx": sleeper(0.003, calls, "onnx"), "torch": fails_to_run})
        == "onnx"
    )


def test_an_unreadable_choice_file_is_measured_again(tmp_path: Path) -> None:
    (cache_dir("onnx") / CHOICE_FILE).write_text("{not json", encoding="utf-8")
    calls: list[str] = []
    assert choose_bulk_backend("model-e", {"onnx": sleeper(0.001, calls, "onnx")}) == "onnx"
    assert calls == ["onnx"]
