"""OpenAI embeddings are priced from the response's usage (they were recorded at an unknown price before)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ragcli.config import CostConfig, PriceOverride
from ragcli.cost.prices import PriceTable
from ragcli.ingest.openai_embedder import OpenAIEmbedder

FIX = Path(__file__).parent / "fixtures" / "provider_usage" / "openai_embeddings.json"


class FakeEmbeddings:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.calls = 0

    def create(self, **kw: Any) -> Any:
        self.calls += 1
        data = [SimpleNamespace(index=i, embedding=[0.1, 0.2, 0.3]) for i in range(len(kw["input"]))]
        usage = None if self.body.get("usage") is None else SimpleNamespace(**self.body["usage"])
        return SimpleNamespace(data=data, usage=usage, model=self.body["model"])


def embedder(body: dict[str, Any], prices: PriceTable | None) -> tuple[OpenAIEmbedder, FakeEmbeddings]:
    emb = OpenAIEmbedder("text-embedding-3-small", dim=3, batch_size=2, prices=prices)
    fake = FakeEmbeddings(body)
    emb._client = SimpleNamespace(embeddings=fake)
    return emb, fake


def test_embeddings_are_priced_per_request() -> None:
    body = json.loads(FIX.read_text())
    table = PriceTable.load(CostConfig(use_litellm_prices=False))
    emb, fake = embedder(body, table)
    usage = emb.embed(["a", "b", "c"]).usage  # two requests of batch_size 2
    assert fake.calls == 2 and usage.calls == 2 and usage.input_tokens == 2 * 812
    assert usage.usd == pytest.approx(2 * 812 * 0.02 / 1e6)


def test_config_price_wins_and_missing_usage_stays_unknown() -> None:
    body = json.loads(FIX.read_text())
    table = PriceTable.load(CostConfig(prices={"text-embedding-3-small": PriceOverride(input=1.0, output=0)}))
    emb, _ = embedder(body, table)
    assert emb.embed(["a"]).usage.usd == pytest.approx(812 / 1e6)
    emb, _ = embedder({**body, "usage": None}, table)
    assert emb.embed(["a"]).usage.usd is None
