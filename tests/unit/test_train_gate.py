"""The deployment gate, trained-model cards and the pieces of embedder training that need no model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ragcli.config import parse_config
from ragcli.errors import ConfigError, InputError, ResourceMissing
from ragcli.retrieval.reranker_models import resolve_reranker_model
from ragcli.train.cross_encoder_training import Pair
from ragcli.train.deployment_gate import paired_bootstrap, per_query_ndcg, write_verdict
from ragcli.train.embedder_training import contrastive_batches
from ragcli.train.exact_ranking import dense_rank, rerank_head, rrf
from ragcli.train.gate_eval import gate_set_from_pairs, split_queries
from ragcli.trained_models import gate_of, model_version, warn_if_gated_out


def test_bootstrap_clear_win_is_deployable() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.6, size=80)
    v = paired_bootstrap(base.tolist(), (base + 0.1).tolist(), baseline_name="hybrid", candidate_name="new")
    assert v.deployable and v.ci_low > 0 and v.delta == pytest.approx(0.1, abs=1e-4)
    assert "DEPLOYABLE" in v.summary() and v.p_not_better == 0.0


def test_bootstrap_noise_is_not_deployable() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, size=60)
    cand = base + rng.normal(0, 0.2, size=60)
    cand -= cand.mean() - base.mean()  # same mean: no real gain
    v = paired_bootstrap(base.tolist(), cand.tolist())
    assert not v.deployable and v.ci_low < 0 < v.ci_high
    assert "NOT deployable" in v.summary()


def test_bootstrap_rejects_unpaired_or_tiny_inputs() -> None:
    with pytest.raises(InputError, match="one score per query"):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(InputError, match="at least 2"):
        paired_bootstrap([0.1], [0.2])


def test_per_query_ndcg_follows_qrels_order() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert per_query_ndcg({"q1": ["a", "x"], "q2": ["x"]}, qrels) == [1.0, 0.0]


def _card(folder: Path, name: str, deployable: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    card = folder / name
    card.write_text(
        json.dumps({"weights_sha": "abcdef0123456789", "trained_at": "2026-12-02T00:00:00+00:00"})
    )
    v = paired_bootstrap([0.5, 0.6, 0.4], [0.1, 0.2, 0.0] if not deployable else [0.9, 0.95, 0.8])
    write_verdict(card, v)
    return card


def test_verdict_in_card_and_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = tmp_path / "rerankers" / "good"
    bad = tmp_path / "rerankers" / "bad"
    _card(good, "ragcli_reranker.json", True)
    _card(bad, "ragcli_reranker.json", False)
    gate = gate_of(bad, "rerankers")
    assert gate is not None and gate["deployable"] is False and "decided_at" in gate
    with caplog.at_level(logging.WARNING):
        assert not warn_if_gated_out("trained:good", good, "rerankers")
        assert warn_if_gated_out("trained:bad", bad, "rerankers")
    assert "FAILED its deployment gate" in caplog.text and "trained:bad" in caplog.text
    assert model_version(good, "rerankers") == "abcdef012345"
    assert model_version(tmp_path, "rerankers") is None


def test_reranker_that_failed_its_gate_warns_when_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _card(tmp_path / "rerankers" / "bad", "ragcli_reranker.json", False)
    with caplog.at_level(logging.WARNING):
        path = resolve_reranker_model("trained:bad", tmp_path)
    assert path.endswith("bad") and "FAILED its deployment gate" in caplog.text
    cfg = parse_config({"home": str(tmp_path), "reranker": {"type": "cross_encoder", "model": "trained:bad"}})
    from ragcli.retrieval.build import build_reranker

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_reranker(cfg)
    assert "FAILED its deployment gate" in caplog.text


def test_trained_embedder_name_carries_its_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder

    with pytest.raises(ResourceMissing, match="ragcli train embedder"):
        SentenceTransformerEmbedder("trained:nope", home=tmp_path)
    _card(tmp_path / "embedders" / "mine", "ragcli_embedder.json", False)
    with caplog.at_level(logging.WARNING):
        emb = SentenceTransformerEmbedder("trained:mine", home=tmp_path)
    # the ingest fingerprint holds model_name: a re-trained model (new weights) re-embeds its collections
    assert emb.model_name == "trained:mine@abcdef012345"
    assert "FAILED its deployment gate" in caplog.text


def test_contrastive_batches_never_repeat_a_query_or_passage() -> None:
    pairs = [Pair(f"q{i % 7}", f"p{i}", 1.0) for i in range(40)] + [
        Pair("q0", "p0", 1.0),
        Pair("x", "n", 0.0),
    ]
    batches = contrastive_batches(pairs, 8, seed=0)
    for b in batches:
        assert len({p.query for p in b}) == len(b) and len({p.passage for p in b}) == len(b)
        assert all(p.label > 0.5 for p in b) and len(b) >= 2


def test_exact_ranking_pieces() -> None:
    docs = np.eye(3, dtype=np.float32)
    ranked = dense_rank(np.array([[0.1, 0.9, 0.2]]), docs, ["a", "b", "c"], 2)[0]
    assert [d for d, _ in ranked] == ["b", "c"]
    fused = rrf([[("a", 1.0), ("b", 0.5)], [("b", 2.0), ("c", 1.0)]], k=60)
    assert fused[0][0] == "b"
    head = rerank_head([("a", 3.0), ("b", 2.0), ("c", 1.0)], {"a": 0.1, "b": 0.9}, 2)
    assert [d for d, _ in head] == ["b", "a", "c"]


def test_split_and_gate_set_from_pairs() -> None:
    train, held = split_queries([f"q{i}" for i in range(10)], 0.2)
    assert len(held) == 2 and not set(train) & set(held)
    with pytest.raises(InputError, match="too few"):
        split_queries(["a", "b", "c"], 0.5)
    pairs = [Pair("q", "good", 1.0), Pair("q", "bad", 0.0), Pair("r", "other", 1.0)]
    gs = gate_set_from_pairs(pairs, {"q"})
    assert set(gs.queries) == {"q"} and len(gs.docs) == 3
    assert [gs.docs[d] for d in gs.qrels["q"]] == ["good"]


def test_cross_encoder_backend_is_validated() -> None:
    cfg = parse_config({"reranker": {"type": "cross_encoder", "model": "m", "backend": "int8"}})
    assert cfg.reranker.backend == "int8"  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        parse_config({"reranker": {"type": "cross_encoder", "model": "m", "backend": "tensorrt"}})
    from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker

    with pytest.raises(ConfigError, match="runs on the CPU"):
        CrossEncoderReranker("some/hub-id", backend="int8", device="cuda")
