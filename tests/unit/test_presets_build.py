"""Every shipped preset loads and builds its stages. Building is lazy: no model is loaded here."""

from __future__ import annotations

import sys

import pytest

from ragcli.config import load_config, preset_names
from ragcli.pipelines.stages import Stages

HEAVY = ("torch", "sentence_transformers", "llama_cpp", "unstructured")


@pytest.mark.parametrize("name", preset_names())
def test_preset_builds_every_stage(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-used")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-used")
    already = {m for m in HEAVY if m in sys.modules}
    cfg = load_config(name)
    stages = Stages.from_config(cfg)
    built = [stages.parser, stages.embedder, stages.llm, stages.packer, stages.prices, stages.ledger]
    assert all(b is not None for b in built)
    stages.reranker  # noqa: B018 - None or a lazily loading reranker
    stages.sparse_encoder  # noqa: B018
    if cfg.store.type == "qdrant_edge":
        assert stages.store.count() == 0
    stages.close()
    loaded = {m for m in HEAVY if m in sys.modules} - already
    assert not loaded - {"unstructured"}, f"building {name} loaded models eagerly: {loaded}"
