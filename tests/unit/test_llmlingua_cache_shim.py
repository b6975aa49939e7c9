"""LegacyCacheModel: llmlingua 0.2.2 gets and gives per-layer (keys, values) tuples over transformers 5's cache."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ragcli.generation.llmlingua_compressor import LegacyCacheModel  # noqa: E402


class FakeLM:
    """Returns a DynamicCache, as transformers 5 models do, holding one more position than it was given."""

    device = "cpu"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def __call__(self, input_ids: Any, past_key_values: Any = None, **_: Any) -> Any:
        self.seen.append(past_key_values)
        cache = past_key_values if past_key_values is not None else transformers.DynamicCache()
        for layer in range(2):
            cache.update(torch.ones(1, 1, 1, 4), torch.zeros(1, 1, 1, 4), layer)
        return SimpleNamespace(logits=torch.zeros(1, 1, 8), past_key_values=cache)


def test_the_cache_round_trips_as_tuples() -> None:
    inner = FakeLM()
    model = LegacyCacheModel(inner)
    out = model(torch.zeros(1, 1, dtype=torch.long), use_cache=True)
    assert isinstance(out.past_key_values, tuple) and len(out.past_key_values) == 2
    keys, values = out.past_key_values[0]  # what llmlingua unpacks
    assert keys.shape[2] == 1 and values.shape == keys.shape
    again = model(torch.zeros(1, 1, dtype=torch.long), past_key_values=out.past_key_values)
    assert isinstance(inner.seen[-1], transformers.DynamicCache)  # the model got its own cache type back
    assert again.past_key_values[0][0].shape[2] == 2
    assert model.device == "cpu"  # everything else is the wrapped model's
