"""Embedders without models or network: the hash fake, the OpenAI adapter on a fake client, build.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ragcli.config import HashEmbedderConfig, OpenAIEmbedderConfig, PipelineConfig
from ragcli.errors import BackendError, ConfigError
from ragcli.ingest.build import build_chunker, build_embedder
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.ingest.openai_embedder import OpenAIEmbedder


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder(16)
    a = e.embed(["the cat sat", "a dog ran", "the cat sat"])
    assert a.vectors.shape == (3, 16)
    assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1.0)
    assert np.allclose(a.vectors[0], a.vectors[2])
    assert a.usage.input_tokens == 9 and a.usage.usd == 0.0
    assert e.embed([]).vectors.shape == (0, 16)


class FakeEmbeddings:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail

    def create(self, **kwargs: Any) -> Any:
        self.requests.append(kwargs)
        if self.fail:
            err = RuntimeError("rate limited")
            err.status_code = 429  # type: ignore[attr-defined]
            raise err
        texts = kwargs["input"]
        # answer out of order, as the API may: the adapter must use `index`
        data = [SimpleNamespace(index=i, embedding=[float(len(t)), 1.0, 0.0]) for i, t in enumerate(texts)][
            ::-1
        ]
        return SimpleNamespace(
            data=data, usage=SimpleNamespace(prompt_tokens=sum(len(t.split()) for t in texts))
        )


def _openai(fake: FakeEmbeddings, batch_size: int = 2) -> OpenAIEmbedder:
    e = OpenAIEmbedder("my-embed", dim=3, batch_size=batch_size, base_url="http://127.0.0.1:9")
    e._client = SimpleNamespace(embeddings=fake)
    return e


def test_openai_embedder_batches_keeps_order_and_reports_usage() -> None:
    fake = FakeEmbeddings()
    texts = ["aaaa", "b", "cc cc", "ddd"]
    out = _openai(fake).embed(texts)
    assert len(fake.requests) == 2 and all(r["dimensions"] == 3 for r in fake.requests)
    # shortest texts go together (sorted by length), results come back in input order
    assert fake.requests[0]["input"] == ["b", "ddd"]
    raw = np.array([[len(t), 1.0, 0.0] for t in texts])
    assert np.allclose(out.vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True))
    assert out.usage.input_tokens == 5 and out.usage.calls == 2
    assert out.usage.usd is None  # priced by the cost stage from its price table


def test_openai_embedder_wraps_errors_and_needs_dim_for_unknown_models() -> None:
    with pytest.raises(BackendError, match="OpenAI embeddings call failed") as info:
        _openai(FakeEmbeddings(fail=True)).embed(["x"])
    assert info.value.retryable and info.value.status == 429
    with pytest.raises(ConfigError, match=r"embedder\.dim is required"):
        OpenAIEmbedder("unknown-model")


def test_openai_embedder_refuses_a_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    monkeypatch.delenv("MY_KEY", raising=False)
    e = OpenAIEmbedder("text-embedding-3-small", api_key_env="MY_KEY")
    with pytest.raises(ConfigError, match="MY_KEY is not set"):
        e.embed(["x"])


def test_build_embedder_and_chunker_cap_at_model_max() -> None:
    assert isinstance(build_embedder(HashEmbedderConfig(dim=8)), HashEmbedder)
    assert isinstance(build_embedder(OpenAIEmbedderConfig(dim=3, model="m")), OpenAIEmbedder)
    cfg = PipelineConfig.model_validate(
        {"ingest": {"chunking": {"max_tokens": 1000, "profiles": {"code": {"max_tokens": 64}}}}}
    )
    chunker = build_chunker(cfg, HashEmbedder(8, max_tokens=300))
    assert chunker.limits_for("prose").max_tokens == 300  # type: ignore[attr-defined]
    assert chunker.limits_for("code").max_tokens == 64  # type: ignore[attr-defined]
    bad = PipelineConfig.model_validate({"ingest": {"chunking": {"profiles": {"poetry": {}}}}})
    with pytest.raises(ConfigError, match="unknown profile"):
        build_chunker(bad, HashEmbedder(8))


def test_build_parser_follows_the_config() -> None:
    from ragcli.ingest.build import build_parser

    pytest.importorskip("unstructured")
    cfg = PipelineConfig.model_validate(
        {"ingest": {"parser": {"text_reader": "unstructured", "pdf_strategy": "auto"}}}
    )
    parser = build_parser(cfg)
    assert parser._text_reader == "unstructured" and parser._pdf_strategy == "auto"  # type: ignore[attr-defined]


def test_a_paid_embedder_is_priced_with_the_configs_prices() -> None:
    from ragcli.config import parse_config
    from ragcli.pipelines.stages import Stages

    cfg = parse_config(
        {
            "embedder": {"type": "openai", "model": "text-embedding-3-small"},
            "cost": {"prices": {"text-embedding-3-small": {"input": 7.0, "output": 0}}},
        }
    )
    embedder = Stages.from_config(cfg).embedder
    assert embedder._prices is not None  # type: ignore[attr-defined]
    assert embedder._prices.price("text-embedding-3-small").input == 7.0  # type: ignore[attr-defined]


def test_doctor_says_what_the_int8_embedding_model_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not made yet, made (which recipe, how close to fp32), or refused by its check: each with what happens."""
    import json

    from ragcli.errors import ResourceMissing
    from ragcli.ingest.onnx_encoder import export_dir
    from ragcli.ingest.openvino_encoder import int8_status

    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ResourceMissing, match=r"not quantized yet.*openvino_int8 makes it"):
        int8_status(model)
    card = export_dir(model) / "model.int8.json"
    card.parent.mkdir(parents=True)
    card.write_text(
        json.dumps({"accepted": True, "min_cosine": 0.9951, "checked_texts": 128, "created": "x"})
    )
    assert "recipe 1" in int8_status(model) and "the next large ingest tries it" in int8_status(model)
    card.write_text(json.dumps({"accepted": True, "recipe": 2, "min_cosine": 0.9958, "checked_texts": 128}))
    assert int8_status(model).startswith("recipe 2, min cosine to fp32 0.9958 on 128 texts")
    card.write_text(json.dumps({"accepted": False, "min_cosine": 0.97}))
    with pytest.raises(ResourceMissing, match=r"refused by its check.*runs fp32"):
        int8_status(model)
