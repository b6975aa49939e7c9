"""The router's LM view (`--lm-layer`): picked or left out by cross-validation, saved with its standardisation,
applied alike at training, evaluation and query time.

A fake vectorizer stands in for the local LM here (plumbing); the real LM's vectors are checked in
`test_lm_vectorizer_runs_the_packaged_lm`, and what the view is worth is measured in benchmarks/routing.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import InputError
from ragcli.eval.router_eval import evaluate_router
from ragcli.generation.learned_router import LearnedRouter
from ragcli.generation.lm_vectors import LM_SCALES, LMFeatures, LMSpec
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.train.router_outcomes import Outcomes, read_outcomes
from ragcli.train.router_training import TrainedRouter, save_router, train_router
from tests.unit.test_router_learned import _routellm_file

runner = CliRunner()
ONLY = ["prior", "logreg_c1"]


class FakeLM:
    """Four numbers per prompt: how many numbers it holds, its length, and two constants; counts its calls."""

    name = "fake-lm/layer3/max256"

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim
        self.calls = 0

    def vectors(self, prompts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows = [[len(re.findall(r"\d+", p)), len(p) / 10.0, 1.0, -1.0] for p in prompts]
        return np.asarray(rows, dtype=np.float32)[:, : self.dim]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return read_outcomes(_routellm_file(tmp_path_factory.mktemp("lm") / "o.jsonl", n=150))


def test_lm_spec_checks_its_arguments() -> None:
    with pytest.raises(InputError, match="at least 1"):
        LMSpec(layer=0)
    with pytest.raises(InputError, match="above 0"):
        LMSpec(layer=8, scale=0.0)
    with pytest.raises(InputError, match="max_tokens"):
        LMSpec(layer=8, max_tokens=0)
    assert LMSpec(layer=8).name == "smollm2-135m-instruct/layer8/max256"


def test_lm_features_standardise_on_training_rows_and_refuse_another_width() -> None:
    raw = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    f = LMFeatures.fit(raw, LMSpec(layer=2), 0.5)
    out = f.apply(np.zeros((2, 3), dtype=np.float32), raw)
    assert out.shape == (2, 5)
    assert out[:, 3:] == pytest.approx(np.array([[-0.5, -0.5], [0.5, 0.5]]), abs=1e-4)
    with pytest.raises(InputError, match="2 numbers per prompt, got 3"):
        f.apply(np.zeros((1, 3), dtype=np.float32), np.zeros((1, 3), dtype=np.float32))


def test_the_view_and_its_scale_are_picked_by_cross_validation(
    outcomes: Outcomes, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeLM()
    raw = fake.vectors(outcomes.prompts)
    with caplog.at_level("WARNING"):
        trained = train_router(
            outcomes,
            HashEmbedder(16),
            with_gbm=False,
            candidates_only=ONLY,
            lm=LMSpec(layer=3),
            lm_vectors=raw,
        )
    # 150 labels: the view was measured to hurt with few labels, and the user is told to compare
    assert "hurt one trained on 760; with 150" in caplog.text
    cv = trained.card["lm_view_cv_apgr"]
    assert list(cv) == ["none", *(f"{s:g}" for s in LM_SCALES)]
    best = max(cv, key=lambda k: cv[k])
    if best == "none":
        assert trained.lm is None and trained.card["lm"] is None
    else:
        assert trained.lm is not None and trained.card["lm"]["scale"] == float(best)
        assert trained.card["lm"]["layer"] == 3 and trained.card["lm"]["dim"] == 4
    # the selection table and the threshold come from the picked view's cross-validation
    picked = trained.card["selection_cv_apgr"][f"{trained.card['model_name']}/{trained.card['rule']}"]
    assert picked["combined"] == pytest.approx(cv[best])


def _scaled_router(outcomes: Outcomes) -> TrainedRouter:
    """A router named `lmr` over a 16-d hash embedding and the fake LM's view at scale 0.1."""
    raw = FakeLM().vectors(outcomes.prompts)
    return train_router(
        outcomes,
        HashEmbedder(16),
        name="lmr",
        with_gbm=False,
        candidates_only=ONLY,
        lm=LMSpec(layer=3, scale=0.1),
        lm_vectors=raw,
    )


def test_a_saved_router_applies_its_view_at_query_time(outcomes: Outcomes, tmp_path: Path) -> None:
    raw = FakeLM().vectors(outcomes.prompts)
    embedder = HashEmbedder(16)
    trained = _scaled_router(outcomes)
    assert trained.card["lm"]["scale"] == 0.1 and trained.card["lm_view_cv_apgr"] == {}
    folder = save_router(trained, tmp_path / "home")
    assert trained.lm is not None
    with np.load(folder / "weights.npz") as npz:
        assert np.allclose(npz["lm_mean"], trained.lm.mean) and np.allclose(npz["lm_std"], trained.lm.std)

    query_lm = FakeLM()
    r = LearnedRouter.load("lmr", tmp_path / "home", embedder=embedder, lm_vectorizer=query_lm)
    emb = np.asarray(embedder.embed(outcomes.prompts).vectors, dtype=np.float32)
    dense = trained.features.dense(outcomes.prompts, outcomes.subjects, outcomes.benchmarks)
    want = trained.model.predict(trained.features_of(emb, raw), dense)
    got = r.predict(outcomes.prompts, outcomes.subjects, outcomes.benchmarks)
    assert got == pytest.approx(want, abs=1e-5) and query_lm.calls == 1
    # precomputed vectors skip the LM
    r.predict(outcomes.prompts[:3], embeddings=emb[:3], lm_vectors=raw[:3])
    assert query_lm.calls == 1
    choice = r.route(outcomes.prompts[0])
    assert choice.tier_name in ("weak-m", "strong-m") and query_lm.calls == 2

    other = LearnedRouter.load("lmr", tmp_path / "home", embedder=embedder, lm_vectorizer=FakeLM(dim=3))
    with pytest.raises(InputError, match="4 numbers per prompt, got 3"):
        other.route("what is 2 + 2?")


def test_evaluate_router_trains_and_scores_with_the_view(outcomes: Outcomes) -> None:
    raw = FakeLM().vectors(outcomes.prompts)
    res = evaluate_router(
        outcomes,
        HashEmbedder(16),
        with_gbm=False,
        candidates_only=ONLY,
        lm=LMSpec(layer=3, scale=0.2),
        lm_vectors=raw,
    )
    assert res["lm"]["scale"] == 0.2 and res["lm_view_cv_apgr"] == {}
    assert 0.0 <= res["combined"]["routers"]["router"]["apgr"] <= 1.0
    with pytest.raises(InputError, match="LM vectors for 3 prompts"):
        train_router(outcomes, HashEmbedder(16), lm=LMSpec(layer=3), lm_vectors=raw[:3])


def test_evaluate_router_trains_on_a_given_split(outcomes: Outcomes) -> None:
    train, test = np.arange(0, 60, dtype=np.int64), np.arange(100, 150, dtype=np.int64)
    res = evaluate_router(
        outcomes, HashEmbedder(16), with_gbm=False, candidates_only=ONLY, split=(train, test)
    )
    assert res["mode"] == "trained on 60 prompts, reported on the other 50"
    assert res["combined"]["n"] == 50


def test_cli_lm_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    ste = importlib.import_module("ragcli.ingest.sentence_transformer_embedder")
    monkeypatch.setattr(ste, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder(16))
    lm_vectors = importlib.import_module("ragcli.generation.lm_vectors")
    monkeypatch.setattr(lm_vectors, "LMVectorizer", lambda spec: FakeLM())
    rt = importlib.import_module("ragcli.train.router_training")
    monkeypatch.setattr(rt, "LMVectorizer", lambda spec: FakeLM())
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "home"))
    outcomes = _routellm_file(tmp_path / "o.jsonl", n=120)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {tmp_path / 'home'}\ncost: {{use_litellm_prices: false}}\n")
    base = ["train", "router", "--outcomes", str(outcomes), "--model", "logreg_c1", "--config", str(cfg)]
    trained = runner.invoke(app, [*base, "--name", "r", "--lm-layer", "3", "--lm-scale", "0.1", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["lm"]["layer"] == 3
    text = runner.invoke(app, [*base, "--name", "r2", "--lm-layer", "3"])
    assert text.exit_code == 0, text.output
    assert "CV APGR by scale: none" in " ".join(text.stdout.split())
    lonely = runner.invoke(app, [*base, "--name", "r3", "--lm-scale", "0.1"])
    assert lonely.exit_code == 64 and "give --lm-layer too" in lonely.output
    report = runner.invoke(app, ["router", "report", "r", "--config", str(cfg)])
    assert report.exit_code == 0 and "layer 3" in report.stdout
    both = runner.invoke(
        app,
        [
            "eval",
            "router",
            "--outcomes",
            str(outcomes),
            "--router",
            "r",
            "--lm-layer",
            "3",
            "--config",
            str(cfg),
        ],
    )
    assert both.exit_code == 64 and "reads what its card says" in both.output


def test_the_pipeline_router_runs_the_view_per_question(
    outcomes: Outcomes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from ragcli.config import parse_config
    from ragcli.generation.tier_router import RouteFacts, TierRouter

    save_router(_scaled_router(outcomes), tmp_path)
    fake = FakeLM()
    monkeypatch.setattr(
        importlib.import_module("ragcli.generation.learned_router"), "LMVectorizer", lambda s: fake
    )
    cfg = parse_config({"router": {"model": "lmr"}})
    router = TierRouter.from_config(cfg, ["weak-m", "strong-m"], tmp_path, embedder=HashEmbedder(16))
    assert router.learned is not None and router.learned.lm is not None
    decision = router.route(RouteFacts(question="question 3 about sums 11 22 33 44 55 66 77 88"))
    assert decision.reason == "router" and fake.calls == 1
    assert set(decision.detail) >= {"router_deficit", "router_threshold", "p_good[weak-m]"}
    assert decision.detail["router_lm_view"] == "smollm2-135m-instruct/layer3/max256"


def test_threads_routing_at_once_load_the_lm_once(
    outcomes: Outcomes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    save_router(_scaled_router(outcomes), tmp_path)
    made: list[FakeLM] = []
    gate = threading.Lock()

    def slow_factory(spec: LMSpec) -> FakeLM:
        time.sleep(0.05)  # a real LM takes seconds to load: every thread arrives while the first is loading
        with gate:
            made.append(FakeLM())
        return made[-1]

    monkeypatch.setattr(
        importlib.import_module("ragcli.generation.learned_router"), "LMVectorizer", slow_factory
    )
    r = LearnedRouter.load("lmr", tmp_path, embedder=HashEmbedder(16))
    with ThreadPoolExecutor(8) as pool:
        choices = list(pool.map(r.route, outcomes.prompts[:16]))
    assert len(made) == 1 and len(choices) == 16
