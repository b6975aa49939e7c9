"""The learned router: metrics, outcomes parsing, training, saving, loading, calibration, report and feedback.

Plumbing only (a hash embedder, synthetic labels); quality is measured in benchmarks/routing.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import InputError, ResourceMissing
from ragcli.eval.routing_metrics import dollars_per_1k, gain_curve, prior_scores, score_router
from ragcli.generation.learned_router import (
    LearnedRouter,
    choose_tiers,
    threshold_for_quality,
    threshold_for_share,
)
from ragcli.generation.route_log import RouteLog
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.train.router_outcomes import read_outcomes, split_indices
from ragcli.train.router_training import save_router, train_router

runner = CliRunner()


# ---------------------------------------------------------------- metrics


def test_apgr_of_oracle_random_and_reverse() -> None:
    weak = np.array([1, 0, 0, 1, 0, 1, 0, 1], dtype=float)
    strong = np.array([1, 1, 1, 1, 1, 1, 0, 1], dtype=float)
    oracle = strong - weak
    assert score_router("o", oracle, weak, strong).apgr > 0.8
    assert score_router("r", -oracle, weak, strong).apgr < 0.3
    # a constant score is one big tie: the expected curve of a random order, APGR 0.5
    assert score_router("c", np.zeros(8), weak, strong).apgr == pytest.approx(0.5)


def test_cpt_and_share_for_quality() -> None:
    weak = np.array([0, 0, 1, 1], dtype=float)
    strong = np.array([1, 1, 1, 1], dtype=float)
    curve = gain_curve([4, 3, 2, 1], weak, strong)
    assert curve.cpt(0.5) == pytest.approx(0.25)
    assert curve.cpt(1.0) == pytest.approx(0.5)
    usd, share = dollars_per_1k(curve, weak_usd=0.001, strong_usd=0.01, quality_share=1.0)
    assert share == pytest.approx(0.5) and usd == pytest.approx(1000 * (0.5 * 0.01 + 0.5 * 0.001))


def test_gain_curve_rejects_mismatched_lengths() -> None:
    with pytest.raises(InputError, match="one length"):
        gain_curve([1.0, 2.0], [1.0], [1.0, 0.0])


def test_prior_scores_shrink_to_overall() -> None:
    s = prior_scores(["a", "a", "b"], [0, 0, 1], [1, 1, 1], ["a", "b", "unseen"], smoothing=0.0)
    assert s.tolist() == pytest.approx([1.0, 0.0, 2 / 3])


# ---------------------------------------------------------------- outcomes


def _routellm_file(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Synthetic RouteLLM-format outcomes: the weak model fails on prompts with many numbers."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        hard = i % 3 == 0
        nums = " ".join(str(x) for x in rng.integers(10, 999, size=8 if hard else 1))
        bench = "gsm8k" if i % 2 else "mmlu"
        rec = {
            "benchmark": bench,
            "prompt": f"question {i} about {'sums' if hard else 'history'} {nums}",
            "weak_model": "weak-m",
            "strong_model": "strong-m",
            "weak_correct": bool(not hard and rng.random() < 0.9),
            "strong_correct": bool(rng.random() < 0.9),
        }
        if bench == "mmlu":
            rec["subject"] = "algebra" if hard else "history"
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_outcomes_routellm_and_native(tmp_path: Path) -> None:
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=10))
    assert o.tiers == ["weak-m", "strong-m"] and o.format == "routellm" and o.labels.shape == (10, 2)
    native = tmp_path / "n.jsonl"
    native.write_text(
        json.dumps(
            {"prompt": "p", "outcomes": {"small": "bad", "mid": 0.7, "big": True}, "cost": {"big": 0.01}}
        )
        + "\n"
    )
    n = read_outcomes(native, ["small", "mid", "big"])
    assert n.labels.tolist() == [[0.0, 0.7, 1.0]] and n.costs is not None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"prompt": "p"}', "no labels"),
        ('{"prompt": "p", "outcomes": {"a": "maybe", "b": 1}}', "a label must be"),
        ('{"prompt": "p", "outcomes": {"a": 3, "b": 1}}', r"\[0, 1\]"),
        ('{"prompt": "p", "outcomes": {"a": 1}}', "at least two tiers"),
    ],
)
def test_read_outcomes_errors(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(line + "\n")
    with pytest.raises(InputError, match=message):
        read_outcomes(f)


def test_split_is_stratified_and_disjoint(tmp_path: Path) -> None:
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=100))
    a, b = split_indices(o, [0.7, 0.3], seed=1)
    assert not set(a) & set(b) and len(a) + len(b) == 100
    assert sum(o.benchmarks[i] == "gsm8k" for i in b) == 15


# ---------------------------------------------------------------- choosing and calibrating


def test_choose_tiers_gap_and_absolute() -> None:
    probs = np.array([[0.9, 0.95, 0.97], [0.2, 0.8, 0.9], [0.1, 0.2, 0.3]])
    assert choose_tiers(probs, 0.1, "gap").tolist() == [0, 1, 1]
    assert choose_tiers(probs, 0.15, "absolute").tolist() == [0, 2, 2]


def test_threshold_for_share_hits_the_share() -> None:
    rng = np.random.default_rng(0)
    probs = rng.random((1000, 2))
    t = threshold_for_share(probs, "gap", 0.3)
    assert (choose_tiers(probs, t, "gap") != 0).mean() == pytest.approx(0.3, abs=0.002)


def test_threshold_for_quality_meets_the_floor() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((500, 2)) < [0.6, 0.9]).astype(float)
    probs = np.clip(labels + rng.normal(0, 0.3, labels.shape), 0, 1)
    t = threshold_for_quality(probs, labels, "gap", 0.95, [1.0, 10.0])
    tiers = choose_tiers(probs, t, "gap")
    assert labels[np.arange(500), tiers].mean() >= 0.95 * labels[:, 1].mean() - 1e-9


# ---------------------------------------------------------------- train, save, load


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("router")
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl"))
    trained = train_router(
        o,
        HashEmbedder(32),
        name="r1",
        target={"strong_share": 0.4},
        tier_prices=[{"model": "weak-m", "input": 0.6, "output": 0.6, "usd_per_query": 0.001}, None],
        with_gbm=False,
        candidates_only=["prior", "logreg_c1", "knn25", "mlp"],
    )
    assert {k.split("/")[0] for k in trained.selection} == {"prior", "logreg_c1", "knn25", "mlp"}
    save_router(trained, tmp_path / "home")
    return tmp_path / "home"


def test_trained_router_learns_the_synthetic_rule(trained_home: Path) -> None:
    r = LearnedRouter.load("r1", trained_home, embedder=HashEmbedder(32))
    hard = r.route("question 3 about sums 11 22 33 44 55 66 77 88", benchmark="gsm8k")
    easy = r.route("question 4 about history 12", benchmark="mmlu", subject="history")
    assert hard.probs[0] < easy.probs[0]
    assert hard.tier_name == "strong-m" and easy.tier_name == "weak-m"
    assert r.card["labels"] == 240 and r.card["tiers"][0]["input"] == 0.6


def test_router_recalibrates_to_a_new_target(trained_home: Path) -> None:
    low = LearnedRouter.load("r1", trained_home, embedder=HashEmbedder(32), target={"strong_share": 0.05})
    high = LearnedRouter.load("r1", trained_home, embedder=HashEmbedder(32), target={"strong_share": 0.9})
    assert low.threshold > high.threshold


def test_router_rejects_another_embedding_size(trained_home: Path) -> None:
    r = LearnedRouter.load("r1", trained_home, embedder=HashEmbedder(16))
    with pytest.raises(Exception, match="32-d"):
        r.route("anything")


def test_missing_router_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ResourceMissing, match="ragcli train router"):
        LearnedRouter.load("nope", tmp_path)


def test_cross_fitted_calibration_fits_on_every_label(tmp_path: Path) -> None:
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=120))
    only = ["prior", "logreg_c1"]
    cross = train_router(o, HashEmbedder(16), with_gbm=False, candidates_only=only)
    card = cross.card
    assert card["calibration"] == "cross-fit"
    assert card["labels_fit"] == card["labels_calibration"] == card["labels"] == 120
    # the threshold is read from out-of-fold predictions: one per label, none from the final fit itself
    assert cross.calib_probs.shape == (120, 2) and cross.calib_labels.shape == (120, 2)
    emb = np.asarray(HashEmbedder(16).embed(o.prompts).vectors, dtype=np.float32)
    in_sample = cross.model.predict(emb, cross.features.dense(o.prompts, o.subjects, o.benchmarks))
    assert not np.allclose(in_sample, cross.calib_probs)
    chosen = choose_tiers(cross.calib_probs, card["threshold"], card["rule"])
    assert (chosen != 0).mean() == pytest.approx(0.5, abs=0.02)

    held = train_router(o, HashEmbedder(16), with_gbm=False, candidates_only=only, calibration="holdout")
    assert held.card["calibration"] == "holdout"
    assert held.card["labels_fit"] + held.card["labels_calibration"] == 120
    assert held.calib_probs.shape == (held.card["labels_calibration"], 2)


def test_forced_model_is_cross_validated_alone_for_its_threshold(tmp_path: Path) -> None:
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=60))
    trained = train_router(o, HashEmbedder(16), model="knn25")
    assert trained.card["model_name"] == "knn25" and trained.card["rule"] == "gap"
    assert {k.split("/")[0] for k in trained.selection} == {"knn25"}
    with pytest.raises(InputError, match="cross-fit"):
        train_router(o, HashEmbedder(16), calibration="half")
    with pytest.raises(InputError, match="unknown router model"):
        train_router(o, HashEmbedder(16), model="nope")


def test_too_few_labels(tmp_path: Path) -> None:
    o = read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=20))
    with pytest.raises(InputError, match="at least 40"):
        train_router(o, HashEmbedder(16))


# ---------------------------------------------------------------- CLI: report, feedback, labels


def test_router_report_says_what_changed(trained_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {trained_home}\nllm: {{type: scripted}}\ncost: {{use_litellm_prices: false}}\n")
    result = runner.invoke(app, ["router", "report", "r1", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    rep = json.loads(result.stdout)
    assert rep["labels"] == 240 and rep["matches"] is False and rep["calibration"] == "cross-fit"
    assert any("tiers changed" in p for p in rep["problems"])
    text = runner.invoke(app, ["router", "report", "r1", "--config", str(cfg)])
    assert "out-of-fold predictions" in " ".join(text.stdout.split())


def test_feedback_unknown_query_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {tmp_path}\n")
    result = runner.invoke(app, ["feedback", "q-unknown", "good", "--config", str(cfg)])
    assert result.exit_code == 64 and "no query with id" in result.output


def test_feedback_becomes_labels(tmp_path: Path) -> None:
    log = RouteLog(tmp_path / "ledger.sqlite")
    log.record_route("q1", "what is 2+2?", "small", "smollm2-135m-instruct", "rule")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {tmp_path}\n")
    assert runner.invoke(app, ["feedback", "q1", "bad", "--config", str(cfg)]).exit_code == 0
    assert runner.invoke(app, ["feedback", "q1", "maybe", "--config", str(cfg)]).exit_code == 64
    out = tmp_path / "labels.jsonl"
    assert runner.invoke(app, ["router", "labels", "--out", str(out), "--config", str(cfg)]).exit_code == 0
    assert json.loads(out.read_text()) == {"prompt": "what is 2+2?", "outcomes": {"small": "bad"}}


def test_a_route_log_written_before_answers_were_kept_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as db:  # the tables as an older ragcli wrote them
        db.execute(
            "CREATE TABLE routes (query_id TEXT PRIMARY KEY, ts TEXT NOT NULL, question TEXT NOT NULL, "
            "tier TEXT NOT NULL, model TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '')"
        )
        db.execute(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, "
            "query_id TEXT NOT NULL, verdict TEXT NOT NULL)"
        )
        db.execute("INSERT INTO routes VALUES ('q0', '2026-01-01', 'old?', 'small', 'smollm2', '')")
    log = RouteLog(path)
    log.record_sources("q0", "docs", [(1, "c")], "An answer [1].")
    assert [u.answer for u in log.unjudged(5)] == ["An answer [1]."]
    log.add_feedback("q0", "good", judge="gpt-4o")
    assert log.labels() == [{"prompt": "old?", "outcomes": {"small": "good"}}]
    log.close()


def test_a_judge_tier_labels_the_answers_without_a_verdict(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"home: {tmp_path}\ncollection: j\nembedder: {{type: hash, dim: 64}}\n"
        "tiers: [{type: scripted, replies: ['The limit is 250 euros [1].']}, "
        "{type: scripted, replies: ['Good: it is in [1].', 'maybe']}]\n"
        "router: {rules: [{tier: 0, question_matches: '.'}]}\ncost: {use_litellm_prices: false}\n"
    )
    samples = Path(__file__).resolve().parents[2] / "samples" / "docs"
    assert runner.invoke(app, ["ingest", str(samples / "travel-policy.md"), "-c", str(cfg)]).exit_code == 0
    for q in ("What is the hotel limit in Paris?", "How are trains booked?"):
        assert runner.invoke(app, ["query", q, "-c", str(cfg)]).exit_code == 0
    out = tmp_path / "labels.jsonl"
    bad_tier = runner.invoke(
        app, ["router", "labels", "--out", str(out), "--judge-tier", "5", "-c", str(cfg)]
    )
    assert bad_tier.exit_code == 64 and "numbered 0 to 1" in bad_tier.output
    judged = runner.invoke(app, ["router", "labels", "--out", str(out), "--judge-tier", "1", "-c", str(cfg)])
    assert judged.exit_code == 0, judged.output
    assert "judged 2 answer(s) with scripted: 1 good, 0 bad, 1 unreadable" in " ".join(judged.output.split())
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == [{"prompt": "What is the hotel limit in Paris?", "outcomes": {"scripted": "good"}}]
    again = runner.invoke(app, ["router", "labels", "--out", str(out), "--judge-tier", "1", "-c", str(cfg)])
    assert "judged 1 answer(s)" in again.output  # the verdict is kept; only the unreadable one is asked again
    from ragcli.cost.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite")
    judge_rows = [r for r in ledger.rows() if r.stage == "judge"]
    ledger.close()
    assert len(judge_rows) == 3 and all(r.query_id for r in judge_rows)


# ---------------------------------------------------------------- CLI: train and eval (hash embedder in place of MiniLM)


def test_cli_train_and_eval_router(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    ste = importlib.import_module("ragcli.ingest.sentence_transformer_embedder")
    monkeypatch.setattr(ste, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder(32))
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "home"))
    outcomes = _routellm_file(tmp_path / "o.jsonl")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {tmp_path / 'home'}\ncost: {{use_litellm_prices: false}}\n")
    trained = runner.invoke(
        app,
        ["train", "router", "--outcomes", str(outcomes), "--name", "r", "--model", "logreg_c1",
         "--target-share", "0.3", "--config", str(cfg), "--json"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["target"] == {"strong_share": 0.3}
    assert json.loads(trained.stdout)["calibration"] == "cross-fit"
    held = runner.invoke(
        app,
        ["train", "router", "--outcomes", str(outcomes), "--name", "h", "--model", "logreg_c1",
         "--calibration", "holdout", "--config", str(cfg)],
    )  # fmt: skip
    assert held.exit_code == 0, held.output
    assert "180 fit, 60 calibration" in " ".join(held.stdout.split())
    scored = runner.invoke(
        app, ["eval", "router", "--outcomes", str(outcomes), "--router", "r", "--config", str(cfg), "--json"]
    )
    assert scored.exit_code == 0, scored.output
    res = json.loads(scored.stdout)
    assert set(res["combined"]["routers"]) == {"router", "random", "length", "subject_prior"}
    assert set(res["benchmarks"]) == {"gsm8k", "mmlu"} and 0.0 <= res["strong_share_reached"] <= 1.0
    # scored on the file it was trained on: said, in the JSON and on stderr
    assert res["in_sample"] is True and "optimistic" in " ".join(scored.stderr.split())
    missing = runner.invoke(
        app, ["eval", "router", "--outcomes", str(tmp_path / "nope.jsonl"), "--config", str(cfg)]
    )
    assert missing.exit_code == 64 and "does not exist" in missing.output


@pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", "/abs/path", ".hidden", "", "x" * 65])
def test_router_names_stay_under_the_home(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"router name .* is not valid; use 1-64 letters"):
        train_router(read_outcomes(_routellm_file(tmp_path / "o.jsonl", n=40)), HashEmbedder(16), name=name)


def test_cli_train_router_refuses_a_path_as_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    ste = importlib.import_module("ragcli.ingest.sentence_transformer_embedder")
    monkeypatch.setattr(ste, "SentenceTransformerEmbedder", lambda *a, **k: HashEmbedder(32))
    home = tmp_path / "home"
    outcomes = _routellm_file(tmp_path / "o.jsonl")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"home: {home}\ncost: {{use_litellm_prices: false}}\n")
    for name in ("../x", str(tmp_path / "abs")):
        r = runner.invoke(
            app,
            ["train", "router", "--outcomes", str(outcomes), "--name", name, "--model", "logreg_c1",
             "--config", str(cfg)],
        )  # fmt: skip
        assert r.exit_code == 64, r.output
        assert "router name" in r.output and "not valid" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()
    assert not (home / "routers").exists() or not any((home / "routers").iterdir())
