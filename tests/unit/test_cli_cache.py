"""`ragcli cache ...`, `ragcli eval cache`, `ragcli train cache-verifier`: exit codes and messages; training on fakes."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.eval.cache_eval import evaluate_pairs
from ragcli.eval.cache_pairs import load_pairs
from ragcli.generation.cache_verifier import CacheVerifier
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.train.cache_verifier import VerifierRecipe, calibrate_verifier, train_cache_verifier

runner = CliRunner()


def _pairs_file(path: Path, n: int = 400) -> Path:
    """Synthetic pairs: label 1 = the same words reordered, label 0 = another topic."""
    rng = random.Random(0)
    topics = [f"topic{i} alpha{i} beta{i} gamma{i}" for i in range(n)]
    rows = []
    for i, t in enumerate(topics):
        words = t.split()
        if i % 2:
            rows.append(
                {"text_a": f"how about {t}", "text_b": " ".join(rng.sample(words, len(words))), "label": 1}
            )
        else:
            rows.append({"text_a": f"how about {t}", "text_b": f"what is {topics[(i + 7) % n]}", "label": 0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_calibrate_and_eval_on_fakes(tmp_path: Path) -> None:
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    recipe = VerifierRecipe(kind="head", epochs=0, max_pairs=400, head_epochs=20, target_precision=0.9)
    card = train_cache_verifier(pairs, "fake", tmp_path / "home", recipe, embedder=HashEmbedder(64))
    assert card["encoder"] == "hash-64" and card["pairs_used"]["calibration"] > 50
    assert card["threshold"] is not None and card["calibration"]["lower"] >= 0.9
    folder = tmp_path / "home" / "verifiers" / "fake"
    v = CacheVerifier(folder, embedder=HashEmbedder(64))
    report = evaluate_pairs(v, load_pairs(pairs), name="fake", target_precision=0.9)
    assert report.held_out.precision >= 0.9 and report.curve
    again = calibrate_verifier(folder, pairs, target_precision=0.8, embedder=HashEmbedder(64))
    assert again["calibration"]["target_precision"] == 0.8 and again["calibration_history"]


def test_a_cosine_verifier_is_calibrated_and_serves_through_the_answer_cache(tmp_path: Path) -> None:
    from ragcli.generation.answer_cache import AnswerCache
    from ragcli.generation.cache_protocols import CacheScope
    from ragcli.generation.cache_verifier import CosineVerifier, open_verifier
    from ragcli.generation.sqlite_cache_store import SqliteCacheStore
    from ragcli.retrieval.qdrant_server_store import QdrantServerStore
    from ragcli.types import Usage

    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    recipe = VerifierRecipe(kind="cosine", epochs=0, max_pairs=400, target_precision=0.9)
    card = train_cache_verifier(pairs, "cos", tmp_path / "home", recipe, embedder=HashEmbedder(64))
    folder = tmp_path / "home" / "verifiers" / "cos"
    assert card["kind"] == "cosine" and card["encoder"] == "hash-64" and not (folder / "head.npz").exists()
    assert card["threshold"] is not None and -1.0 <= card["threshold"] <= 1.0
    assert card["calibration"]["lower"] >= 0.9
    v = open_verifier(folder, embedder=HashEmbedder(64))
    assert isinstance(v, CosineVerifier) and v.reuses("hash-64")
    same = v.score(["how about topic1 alpha1 beta1 gamma1"], ["gamma1 topic1 beta1 alpha1"])
    other = v.score(["how about topic1 alpha1 beta1 gamma1"], ["what is topic8 alpha8 beta8 gamma8"])
    assert same[0] >= v.threshold > other[0]
    report = evaluate_pairs(v, load_pairs(pairs), name="cos", target_precision=0.9)
    assert report.held_out.precision >= 0.9
    scope = CacheScope("docs", tenant="", filter="", pipeline="p1", model="m")
    index = QdrantServerStore("answer_cache", location=":memory:")
    cache = AnswerCache(SqliteCacheStore(tmp_path / "c.sqlite"), index, HashEmbedder(64), verifier=v)
    cache.store(
        "how about topic1 alpha1 beta1 gamma1", scope, "An answer.", model="m", usage=Usage(10, 0, 5, 0.0, 1)
    )
    hit = cache.lookup("gamma1 topic1 beta1 alpha1", scope).hit
    assert hit is not None and hit.tier == "semantic" and hit.entry.answer == "An answer."
    assert cache.lookup("what is topic8 alpha8 beta8 gamma8", scope).hit is None
    index.close()


def test_cli_errors_exit_64(tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", "cache"])
    assert r.exit_code == 64 and "exactly one of --pairs" in r.output
    # a missing pairs file is named before the missing verifier (the cheaper mistake to fix comes first)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"home: {tmp_path / 'home'}\nembedder: {{type: hash, dim: 64}}\n")
    r = runner.invoke(app, ["eval", "cache", "--pairs", str(tmp_path / "nope.jsonl"), "-c", str(cfg)])
    assert r.exit_code == 64 and "pairs file" in r.output and "does not exist" in r.output
    r = runner.invoke(app, ["cache", "invalidate"])
    assert r.exit_code == 64 and "--source" in r.output
    r = runner.invoke(
        app, ["train", "cache-verifier", "--pairs", str(tmp_path / "nope.jsonl"), "--name", "x"]
    )
    assert r.exit_code == 64 and "does not exist" in r.output
    r = runner.invoke(app, ["cache", "calibrate", "--pairs", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 64 and "ragcli train cache-verifier" in r.output


def test_cli_stats_and_list_on_an_empty_cache() -> None:
    r = runner.invoke(app, ["cache", "stats", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["entries"] == 0
    r = runner.invoke(app, ["cache", "list", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == []
    r = runner.invoke(app, ["cache", "optimize"])
    assert r.exit_code == 0 and "optimised the answer cache's index" in r.output


# ---------------------------------------------------------------- replay, strict JSON, judged pairs, maintenance

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _strict_json(text: str) -> Any:
    """JSON as a strict parser reads it: `Infinity`, `-Infinity` and `NaN` are errors (as in JS `JSON.parse`)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _scripted_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "home": str(tmp_path / "home"),
                "store": {"type": "qdrant_edge"},
                "embedder": {"type": "hash", "dim": 64},
                "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
                "cache": {"enabled": True},
            }
        )
    )
    return cfg


def _ingested(tmp_path: Path) -> list[str]:
    """The `-c CONFIG` arguments of a scripted pipeline with the answer cache on, the travel policy ingested."""
    c = ["-c", str(_scripted_config(tmp_path))]
    assert runner.invoke(app, ["ingest", str(SAMPLES / "travel-policy.md"), *c]).exit_code == 0
    return c


def _replay(tmp_path: Path, c: list[str], rows: list[dict[str, str]]) -> Any:
    """`ragcli eval cache --replay` over `rows`, its JSON parsed strictly."""
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = runner.invoke(app, ["eval", "cache", "--replay", str(log), "--json", *c])
    assert r.exit_code == 0, r.output
    return _strict_json(r.stdout)


def test_replay_counts_hits_from_the_pipeline_trace_in_a_scratch_cache(tmp_path: Path) -> None:
    c = _ingested(tmp_path)
    asked = runner.invoke(app, ["query", "What is the hotel limit in Paris?", *c])
    assert asked.exit_code == 0, asked.output
    before = runner.invoke(app, ["cache", "list", "--json", *c])
    stats_before = runner.invoke(app, ["cache", "stats", "--json", *c])
    assert len(_strict_json(before.stdout)) == 1  # the user's cache holds one answer

    rows = [
        {"question": "What is the hotel limit in Paris?", "group": "hotel"},
        {"question": "What is the hotel limit in Paris?", "group": "hotel"},
        {"question": "How are meals reimbursed?", "group": "meals"},
    ]
    rep = _replay(tmp_path, c, rows)
    # a cold scratch cache: the first ask is a miss although the user's cache has the answer, the repeat a hit
    assert rep["questions"] == 3 and rep["llm_calls"] == 2
    assert rep["exact_hits"] == 1 and rep["calls_avoided"] == 1 and rep["semantic_hits"] == 0
    assert rep["wrong_answers_served"] == 0
    # the user's cache is as it was: same entries, no hit counted, no lookup recorded
    assert runner.invoke(app, ["cache", "list", "--json", *c]).stdout == before.stdout
    assert runner.invoke(app, ["cache", "stats", "--json", *c]).stdout == stats_before.stdout


def test_replay_counts_a_hit_served_across_groups_as_a_wrong_answer(tmp_path: Path) -> None:
    rows = [
        {"question": "What is the hotel limit in Paris?", "group": "hotel"},
        {"question": "what is the hotel limit in paris", "group": "other"},
    ]
    rep = _replay(tmp_path, _ingested(tmp_path), rows)
    assert rep["llm_calls"] == 1 and rep["exact_hits"] == 1 and rep["wrong_answers_served"] == 1
    assert rep["wrong_examples"] == [
        {"asked": "what is the hotel limit in paris", "served_for": "What is the hotel limit in Paris?"}
    ]


def test_replay_row_reads_the_trace_the_query_path_writes() -> None:
    from ragcli.eval.cache_eval import replay_row
    from ragcli.types import Answer, StageTrace, Usage

    hit = Answer(
        "q",
        "a",
        [],
        "m",
        usage=Usage(usd=0.0),
        trace=[
            StageTrace(
                "cache",
                0.0,
                detail={"hit": True, "tier": "semantic", "cached_question": "Q?", "saved_usd": 0.25},
            )
        ],
    )
    row = {"hit": "semantic", "cached_question": "Q?", "saved_usd": 0.25, "llm_calls": 0, "usd": 0.0}
    assert replay_row(hit) == row
    miss = Answer(
        "q",
        "a",
        [],
        "m",
        usage=Usage(usd=0.5),
        trace=[
            StageTrace("cache_lookup", 0.0, detail={"hit": False}),
            StageTrace("llm", 0.0, detail={"refused": "over budget"}),
            StageTrace("llm", 0.0, detail={"attempts": 1}),
        ],
    )
    assert replay_row(miss)["hit"] is None and replay_row(miss)["llm_calls"] == 1
    refused = Answer("q", "", [], "m", Usage(), trace=[StageTrace("llm", 0.0, detail={"skipped": True})])
    assert replay_row(refused)["llm_calls"] == 0


def test_eval_cache_json_is_strict_when_no_threshold_qualifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragcli.generation.cache_verifier as cv
    from ragcli.cli_support import finite_or_none

    home = tmp_path / "home"
    recipe = VerifierRecipe(kind="head", epochs=0, max_pairs=400, head_epochs=20, target_precision=0.9)
    train_cache_verifier(
        _pairs_file(tmp_path / "pairs.jsonl"), "fake", home, recipe, embedder=HashEmbedder(64)
    )
    real_open = cv.open_verifier
    monkeypatch.setattr(cv, "open_verifier", lambda folder, **k: real_open(folder, embedder=HashEmbedder(64)))
    # labels that have nothing to do with the texts: no threshold meets precision 0.99
    rng = random.Random(1)
    noise = tmp_path / "noise.jsonl"
    noise.write_text(
        "".join(
            json.dumps(
                {"text_a": f"ask {i} alpha{i}", "text_b": f"say {i} beta{i}", "label": rng.randint(0, 1)}
            )
            + "\n"
            for i in range(300)
        )
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"home": str(home), "cache": {"target_precision": 0.99}}))
    r = runner.invoke(app, ["eval", "cache", "--pairs", str(noise), "-c", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    rep = _strict_json(r.stdout)
    assert rep["calibrated"]["threshold"] is None and rep["held_out"]["threshold"] is None
    text = runner.invoke(app, ["eval", "cache", "--pairs", str(noise), "-c", str(cfg)])
    assert text.exit_code == 0 and "calibrated threshold none" in text.stdout
    flat = " ".join(text.stdout.split())
    assert "held out: no hits" in flat
    # what the user can do instead: the strictest precision these pairs support
    assert "no threshold reaches precision 0.99" in flat and "the best reached is 0." in flat
    assert finite_or_none({"a": math.inf, "b": [math.nan, 1.5], "c": (-math.inf,)}) == {
        "a": None, "b": [None, 1.5], "c": [None]
    }  # fmt: skip


def test_judged_export_skips_exact_repeats(tmp_path: Path) -> None:
    from ragcli.cli_support import load
    from ragcli.state.build import open_route_log

    log = open_route_log(load(None))
    try:
        judged = [
            ("q1", "What is the hotel limit?", "What is the hotel limit?", "exact", "bad"),
            ("q2", "What is the hotel limit?", "what is the hotel limit", "exact", "good"),
            ("q3", "What is the hotel limit?", "How much may a hotel night cost?", "semantic", "bad"),
            ("q4", "How are meals paid?", "Who pays for meals?", "semantic", "good"),
        ]
        for qid, cached, asked, tier, verdict in judged:
            log.link_cache(qid, f"e-{qid}", "served", question=asked, cached_question=cached, tier=tier)
            log.add_feedback(qid, verdict)
    finally:
        log.close()
    out_file = tmp_path / "pairs.jsonl"
    r = runner.invoke(app, ["cache", "judged", "--out", str(out_file)])
    assert r.exit_code == 0, r.output
    assert "wrote 2 labeled pairs" in r.stdout and "skipped 2 judged exact repeat" in r.stdout
    assert "exact: 1 of 2 judged hits good" in r.stdout  # the verdicts still count as the cache's precision
    pairs = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert pairs == [
        {"text_a": "What is the hotel limit?", "text_b": "How much may a hotel night cost?", "label": 0},
        {"text_a": "How are meals paid?", "text_b": "Who pays for meals?", "label": 1},
    ]
    j = _strict_json(runner.invoke(app, ["cache", "judged", "--out", str(out_file), "--json"]).stdout)
    assert j["pairs"] == 4 and j["written"] == 2 and j["skipped_exact_repeats"] == 2


def test_cache_help_lists_every_subcommand() -> None:
    from ragcli.cli_cache import cache_app

    r = runner.invoke(app, ["cache", "--help"])
    names = [c.name for c in cache_app.registered_commands]
    assert {"optimize", "judged", "invalidate", "calibrate"} <= set(names)
    assert all(n in (cache_app.info.help or "") for n in names)
    assert r.exit_code == 0


def test_invalidate_warns_when_no_entry_cites_the_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "nonexistent"
    r = runner.invoke(app, ["cache", "invalidate", "--source", str(missing)])
    assert r.exit_code == 0 and "dropped 0 cached answers" in r.stdout
    assert "no cached answer cites" in r.stderr and "does not exist" in r.stderr
    r = runner.invoke(app, ["cache", "invalidate", "--source", str(tmp_path)])
    assert r.exit_code == 0 and "(the path exists)" in r.stderr
    assert runner.invoke(app, ["cache", "clear", "--yes"]).exit_code == 0
    declined = runner.invoke(app, ["cache", "clear"], input="n\n")
    assert declined.exit_code == 0 and "nothing dropped" in declined.stdout
    assert runner.invoke(app, ["cache", "list"]).exit_code == 0
    # maintenance never uses the verifier, so it does not warn that none is trained
    assert not [rec for rec in caplog.records if "no cache verifier" in rec.getMessage()]
    r = runner.invoke(app, ["cache", "stats"])  # where it matters, it is said
    assert r.exit_code == 0 and "exact repeats only" in r.stderr


@pytest.mark.parametrize("name", ["..", "../x", "/abs", ".x"])
def test_verifier_names_stay_under_the_home(tmp_path: Path, name: str) -> None:
    from ragcli.errors import InputError

    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.txt").write_text("the home survives")
    with pytest.raises(InputError, match=r"verifier name .* is not valid"):
        train_cache_verifier(_pairs_file(tmp_path / "pairs.jsonl"), name, home, embedder=HashEmbedder(64))
    assert (home / "keep.txt").is_file()
