"""The trained fusion of dense and BM25 scores (issue 15): features, fitting, the gate, loading, the query path.

Plumbing on synthetic rankings and the hash embedder; what it gains on real labels is measured in
benchmarks/retrieval_trained.py.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.errors import ConfigError, InputError, ResourceMissing
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, retrieve
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.fusion import FEATURES, LearnedFusion, candidate_features, load_fusion, rrf
from ragcli.train.deployment_gate import GateVerdict
from ragcli.train.fusion_training import fit_fusion, gate_fusion, training_rows

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _query(rng: random.Random, n: int = 30) -> tuple[list[tuple[str, float]], list[tuple[str, float]], str]:
    """One query's dense and BM25 rankings where the relevant document stands out by its dense score (a big gap
    to the next) but sits low in BM25, so RRF, which reads ranks only, buries it under documents both like."""
    docs = [f"d{i}" for i in range(n)]
    rel = rng.choice(docs)
    dense_s = {d: rng.uniform(0.3, 0.6) for d in docs}
    dense_s[rel] = 0.9
    bm25_s = {d: rng.uniform(5.0, 15.0) for d in docs}
    bm25_s[rel] = 1.0
    dense = sorted(dense_s.items(), key=lambda x: -x[1])
    sparse = sorted(bm25_s.items(), key=lambda x: -x[1])
    return dense, sparse, rel


def test_features_of_missing_candidates_follow_what_each_search_returned() -> None:
    dense = [("a", 0.9), ("b", 0.8)]  # full list (prefetch 2): a missing one scores at most the last
    sparse = [("b", 7.0)]  # shorter than the prefetch: BM25 returned every match, a missing one scores 0
    x = candidate_features(dense, sparse, ["a", "b", "c"], rrf_k=60, prefetch=2)
    assert x.shape == (3, len(FEATURES))
    assert x[2, 0] == pytest.approx(0.8) and x[0, 1] == 0.0 and x[2, 1] == 0.0
    assert x[0, 2] == pytest.approx(1 / 61) and x[2, 2] == pytest.approx(
        1 / 63
    )  # missing: rank = list length
    assert x[0, 5] == 0.0 and x[1, 5] == pytest.approx(-0.1)  # gap to the best dense score
    assert candidate_features([], [], [], rrf_k=60, prefetch=2).shape == (0, len(FEATURES))


Synthetic = tuple[list[tuple[str, float]], list[tuple[str, float]], str]
"""One query: its dense ranking, its BM25 ranking, its relevant document."""


def _rows(queries: list[Synthetic], **kw: Any) -> tuple[Any, Any]:
    """`training_rows` of synthetic queries (depth 20, RRF k=60, prefetch 30)."""
    return training_rows(
        [d for d, _, _ in queries],
        [s for _, s, _ in queries],
        [{r: 1} for _, _, r in queries],
        depth=20,
        rrf_k=60,
        prefetch=30,
        **kw,
    )


def _gate(model: LearnedFusion, queries: list[Synthetic], **kw: Any) -> GateVerdict:
    """`gate_fusion` of a model on synthetic queries, against RRF (k=60)."""
    return gate_fusion(
        model,
        [d for d, _, _ in queries],
        [s for _, s, _ in queries],
        [{r: 1} for _, _, r in queries],
        [rrf([d, s], k=60, limit=100) for d, s, _ in queries],
        **kw,
    )


def test_fit_learns_what_rrf_misses_and_the_gate_sees_it() -> None:
    rng = random.Random(0)
    train = [_query(rng) for _ in range(60)]
    held = [_query(rng) for _ in range(40)]
    x, y = _rows(train)
    assert x.shape == (60 * 20, len(FEATURES)) and 0 < y.sum() <= 60
    model = fit_fusion("synthetic", x, y, depth=20, rrf_k=60, prefetch=30)
    dense, sparse, rel = held[0]
    fused = model.fuse(dense, sparse, 10)
    assert fused[0][0] == rel and len(fused) == 10
    assert [s for _, s in fused] == sorted((s for _, s in fused), reverse=True)  # a falling list
    verdict = _gate(model, held)
    assert verdict.deployable and verdict.delta > 0.2
    with pytest.raises(InputError, match="both relevant and other"):
        fit_fusion("none", x, np.zeros(len(y)))


def test_tail_beyond_depth_keeps_rrf_order_below_the_head() -> None:
    rng = random.Random(1)
    dense, sparse, _ = _query(rng)
    model = LearnedFusion(
        "m", [0.0] * len(FEATURES), 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES), depth=5
    )
    fused = model.fuse(dense, sparse, 12)
    base = rrf([dense, sparse], k=60, limit=12)
    assert [d for d, _ in fused[5:]] == [d for d, _ in base[5:]]
    assert max(s for _, s in fused[5:]) <= min(s for _, s in fused[:5])


def test_load_by_name_or_path_and_clear_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = LearnedFusion("m", [1.0] * len(FEATURES), 0.5, [0.0] * len(FEATURES), [1.0] * len(FEATURES))
    model.card = {"gate": {"deployable": False, "delta": -0.01, "queries": 30}}
    folder = tmp_path / "fusions" / "m"
    path = model.save(folder)
    with caplog.at_level(logging.WARNING):
        back = load_fusion("trained:m", tmp_path)
    assert back.weights == model.weights and back.card["gate"]["deployable"] is False
    assert "FAILED its deployment gate" in caplog.text
    assert load_fusion(str(path), tmp_path).bias == 0.5 and load_fusion(str(folder), tmp_path).name == "m"
    with pytest.raises(ResourceMissing, match=r"trained fusions: m.*ragcli train fusion"):
        load_fusion("trained:other", tmp_path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "features": ["dense_score"]}))
    with pytest.raises(ResourceMissing, match="not a fusion model"):
        load_fusion("trained:m", tmp_path)
    path.write_text("{not json")
    with pytest.raises(ResourceMissing, match="not valid JSON"):
        load_fusion("trained:m", tmp_path)


def test_config_rejects_a_fusion_without_hybrid_search() -> None:
    with pytest.raises(ConfigError, match=r"set retrieval\.mode: hybrid"):
        parse_config({"retrieval": {"mode": "dense", "fusion": "trained:x"}})
    with pytest.raises(ConfigError, match="fusion is empty"):
        parse_config({"retrieval": {"mode": "hybrid", "fusion": " "}})
    assert (
        parse_config({"retrieval": {"mode": "hybrid", "fusion": "trained:x"}}).retrieval.fusion == "trained:x"
    )


def _cfg(home: Path, fusion: str = "rrf") -> dict[str, object]:
    return {
        "home": str(home),
        "collection": "t",
        "store": {"type": "qdrant", "location": ":memory:"},
        "embedder": {"type": "hash", "dim": 64},
        "ingest": {"sparse": True},
        "filterable": {"department": "keyword"},
        "retrieval": {"mode": "hybrid", "fusion": fusion, "top_k": 3},
    }


def test_train_fusion_cli_then_the_query_path_uses_it(tmp_path: Path) -> None:
    import yaml

    pairs = tmp_path / "pairs.jsonl"
    rows = [
        ("hotel limit paris", "The hotel limit in Paris is 250 euros per night."),
        ("train travel class", "Trains are booked in second class unless the trip exceeds four hours."),
        ("laptop encryption", "Every laptop uses full-disk encryption before it leaves the office."),
        ("password length", "Passwords have at least 14 characters and never repeat."),
        ("first day badge", "New starters collect their badge at reception on their first day."),
        ("meal allowance", "The daily meal allowance abroad is 60 euros."),
        ("vpn required", "Use the VPN on any network outside the office."),
        ("expense deadline", "Expenses are filed within 30 days of the trip."),
        ("mentor onboarding", "Each new starter is given a mentor for the first month."),
        ("phishing report", "Report phishing e-mails to the security team at once."),
    ]
    pairs.write_text("".join(json.dumps({"query": q, "passage": p, "label": 1}) + "\n" for q, p in rows))
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(tmp_path / "home")))
    result = CliRunner().invoke(
        app,
        ["train", "fusion", "--pairs", str(pairs), "--name", "tiny", "--holdout", "0.3", "-c", str(cfg_file)],
    )
    assert result.exit_code == 0, result.output
    assert "trained fusion tiny" in result.output and "deployment gate" in result.output
    card = json.loads((tmp_path / "home" / "fusions" / "tiny" / "ragcli_fusion.json").read_text())
    assert card["gate"]["queries"] == 3 and card["data"]["train_queries"] == 7
    assert "at the config's cut (top 3, min_relative_score None)" in result.output
    assert set(card["cut"]["today"]) == {"hits_kept", "recall"} and card["cut"]["trained"]["hits_kept"] == 3

    # with a fusion in the config, a new one is gated against that fusion, read before it could be replaced
    cfg2 = tmp_path / "cfg2.yaml"
    cfg2.write_text(yaml.safe_dump(_cfg(tmp_path / "home", "trained:tiny")))
    again = CliRunner().invoke(
        app, ["train", "fusion", "--pairs", str(pairs), "--name", "tiny", "--holdout", "0.3", "-c", str(cfg2)]
    )
    assert again.exit_code == 0, again.output
    card = json.loads((tmp_path / "home" / "fusions" / "tiny" / "ragcli_fusion.json").read_text())
    assert card["gate"]["baseline"] == "hybrid, fusion trained:tiny"

    bad = CliRunner().invoke(
        app, ["train", "fusion", "--pairs", str(pairs), "--name", "x", "--depth", "50", "--prefetch", "20",
              "-c", str(cfg_file)],
    )  # fmt: skip
    assert bad.exit_code != 0 and "--depth 50 is more than --prefetch 20" in bad.output

    stages = Stages.from_config(
        parse_config(_cfg(tmp_path / "home", "trained:tiny")), parser=PlainTextParser()
    )
    try:
        report = ingest([SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md"], stages)
        assert not report.failed
        rec = Recorder(None, "q1")
        got = retrieve("What is the hotel limit in Paris?", stages, QueryOptions(), rec)
        assert got.hits and all(0.0 <= h.score <= 1.0 for h in got.hits)
        search = next(t for t in rec.trace if t.stage == "search")
        assert search.detail["fusion"] == "fusion:tiny"
        # a filter reaches both searches: nothing from another source comes back
        scoped = retrieve(
            "What is the hotel limit in Paris?",
            stages,
            QueryOptions(where="department = 'nowhere'"),
            Recorder(None, "q2"),
        )
        assert scoped.hits == []
    finally:
        stages.close()

    given = LearnedFusion("mine", [0.0] * len(FEATURES), 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES))
    assert (
        Stages.from_config(parse_config(_cfg(tmp_path / "home", "trained:nope")), fusion=given).fusion
        is given
    )
    missing = Stages.from_config(parse_config(_cfg(tmp_path / "home", "trained:nope")))
    with pytest.raises(ResourceMissing, match="ragcli train fusion"):
        _ = missing.fusion


def test_retraining_a_fusion_under_the_same_name_changes_the_cache_key_space(tmp_path: Path) -> None:
    from ragcli.generation.cache_build import pipeline_version

    cfg = parse_config(_cfg(tmp_path, "trained:m"))
    folder = tmp_path / "fusions" / "m"
    versions = []
    for bias in (0.0, 1.0):
        model = LearnedFusion("m", [1.0] * len(FEATURES), bias, [0.0] * len(FEATURES), [1.0] * len(FEATURES))
        model.card = {"weights_sha": f"w{bias}"}
        model.save(folder)
        versions.append(pipeline_version(cfg))
    assert versions[0] != versions[1]
    assert pipeline_version(parse_config(_cfg(tmp_path))) not in versions


def test_the_local_preset_uses_the_packaged_fusion(caplog: pytest.LogCaptureFixture) -> None:
    from ragcli.config import load_config
    from ragcli.retrieval.build import build_fusion

    cfg = load_config("local")
    assert cfg.retrieval.fusion == "packaged:minilm-scifact"
    with caplog.at_level(logging.WARNING):
        model = build_fusion(cfg)
    assert model is not None and model.card["gate"]["deployable"] and not caplog.text
    with pytest.raises(ResourceMissing, match="packaged: packaged:minilm-scifact"):
        load_fusion("packaged:nope")
    other = cfg.model_copy(
        update={"embedder": cfg.embedder.model_copy(update={"model": "BAAI/bge-small-en-v1.5"})}
    )
    with caplog.at_level(logging.WARNING):
        build_fusion(other)
    assert "was trained on all-MiniLM-L6-v2's scores" in caplog.text


def test_doctor_finds_the_packaged_fusion() -> None:
    from ragcli.doctor import _packaged_fusion

    assert _packaged_fusion().startswith("packaged:minilm-scifact (9 weights; gate +0.036")


def test_reranker_and_embedder_gates_compare_against_the_configured_fusion(tmp_path: Path) -> None:
    """A config that ranks with a trained fusion is what a new reranker or embedder must beat, not plain RRF."""
    from ragcli.ingest.build import build_embedder
    from ragcli.train.gate_eval import GateSet, _Ranker, gate_reranker

    home = tmp_path / "home"
    # a fusion that follows BM25's score alone: its order differs from RRF's on these documents
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("bm25_score")] = 5.0
    LearnedFusion("bm", weights, 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES)).save(
        home / "fusions" / "bm"
    )
    docs = {f"d{i}": f"travel policy {'hotel ' * i}paris budget note {i}" for i in range(12)}
    gs = GateSet({"q": "hotel paris", "r": "hotel"}, {"q": {"d11": 1}, "r": {"d11": 1}}, docs)
    cfg = parse_config(_cfg(home, "trained:bm"))
    ranker = _Ranker(cfg, gs, 20)
    assert ranker.fusion is not None and ranker.name == "hybrid (fusion:bm)"
    embedder = build_embedder(cfg.embedder, home=home)
    ranked = ranker.rank(embedder)[0]
    assert ranked[0][0] == "d11"  # the most "hotel" terms: BM25's best, first under this fusion

    class Constant:
        def score(self, query: str, texts: list[str]) -> list[float]:
            return [0.0] * len(texts)

    verdict = gate_reranker(cfg, gs, Constant())
    assert verdict.baseline == "hybrid (fusion:bm)" and verdict.baseline_mean == 1.0
    assert _Ranker(parse_config(_cfg(home)), gs, 20).name == "hybrid"


def test_condensed_gate_ignores_what_feedback_never_judged() -> None:
    """Feedback judges only the sources an answer showed. A candidate ranking that puts an unjudged chunk first is
    not punished for it with `condensed` (it may well be relevant), and is without."""
    weights = [0.0] * len(FEATURES)
    weights[FEATURES.index("bm25_score")] = 5.0  # follows BM25, which ranks the unjudged "u" first
    model = LearnedFusion("bm", weights, 0.0, [0.0] * len(FEATURES), [1.0] * len(FEATURES))
    dense = [("r", 0.9), ("n", 0.8), ("u", 0.1)]
    sparse = [("u", 9.0), ("r", 5.0), ("n", 1.0)]
    baseline = [[("r", 1.0), ("n", 0.5), ("u", 0.1)] for _ in range(4)]
    qrels = [{"r": 1, "n": 0} for _ in range(4)]  # "u" was never shown, so never judged
    plain = gate_fusion(model, [dense] * 4, [sparse] * 4, qrels, baseline)
    condensed = gate_fusion(model, [dense] * 4, [sparse] * 4, qrels, baseline, condensed=True)
    assert plain.delta < 0 and condensed.delta == 0.0


def test_cut_effect_counts_what_the_packing_cut_keeps() -> None:
    from ragcli.train.fusion_training import cut_effect

    rankings = [[("a", 0.9), ("b", 0.5), ("c", 0.05)], [("x", 0.2), ("y", 0.19)]]
    qrels = [{"a": 1, "c": 1}, {"z": 1}]
    assert cut_effect(rankings, qrels, top_k=3, cut=None) == {"hits_kept": 2.5, "recall": 2 / 3}
    assert cut_effect(rankings, qrels, top_k=3, cut=0.1) == {"hits_kept": 2.0, "recall": 1 / 3}
    assert cut_effect(rankings, qrels, top_k=1, cut=None) == {"hits_kept": 1.0, "recall": 1 / 3}
