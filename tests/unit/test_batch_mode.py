"""Batch mode against a local fake of OpenAI's Files and Batch endpoints, through the real `openai` SDK: API-tier
questions go in one batch at the batch price, local-tier ones are answered in-process, and a run interrupted
while the batch is in progress resumes without submitting (or billing) again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("openai")

from ragcli.config import parse_config
from ragcli.errors import InputError
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.batch_pipeline import read_questions, run_batch
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import NO_SOURCES_ANSWER
from ragcli.pipelines.stages import Stages
from tests.unit.fake_openai_batch_server import FakeBatchServer

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _stages(tmp_path: Path, base_url: str) -> Stages:
    cfg = parse_config(
        {
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "filterable": {"source": "keyword"},
            "tiers": [
                {"type": "scripted"},
                {"type": "openai", "model": "gpt-4o-mini", "base_url": base_url, "api_key_env": None},
            ],
            "router": {"rules": [{"tier": 1, "question_matches": "hotel"}]},
            "cost": {"use_litellm_prices": False},
        }
    )
    local = ScriptedLLM(["Local answer [1]."])
    from ragcli.generation.build import build_llm

    api = build_llm(cfg.model_copy(update={"llm": cfg.tiers[1]}), Stages.from_config(cfg).prices)
    s = Stages.from_config(cfg, parser=PlainTextParser(), tiers=[local, api])
    assert not ingest([SAMPLES / "travel-policy.md"], s).failed
    return s


def _questions(tmp_path: Path) -> Path:
    q = tmp_path / "q.jsonl"
    q.write_text(
        "\n".join(
            json.dumps(x)
            for x in (
                {"id": "a", "question": "What is the hotel limit in Paris?"},
                {"id": "b", "question": "Which hotel class may staff book?"},
                {"id": "c", "question": "How are trains booked?"},
            )
        )
        + "\n"
    )
    return q


def test_batch_resumes_without_paying_twice(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        server.api.polls_to_complete = 3
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        # first run: stops while the batch is in progress (as an interrupted run would)
        first = run_batch(_questions(tmp_path), out, s, poll_s=0.0, max_wait_s=0.0)
        assert first.pending == 2 and first.answered == 1
        assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["c"]
        # second run: same command, polls the saved batch, never uploads or creates another
        second = run_batch(_questions(tmp_path), out, s, poll_s=0.0)
        assert second.pending == 0 and second.answered == 3
        assert server.api.count("POST", "/v1/files") == 1 and server.api.count("POST", "/v1/batches") == 1
        # a third run finds nothing to do
        run_batch(_questions(tmp_path), out, s, poll_s=0.0)
        assert server.api.count("POST", "/v1/batches") == 1
        answers = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert answers["a"]["answer"] == "Batched answer [1]." and answers["a"]["batch"] is True
        assert answers["c"]["answer"] == "Local answer [1]." and answers["c"]["batch"] is False
        rows = [r for r in s.ledger.rows() if r.stage == "llm" and r.model == "gpt-4o-mini"]
        assert len(rows) == 2 and all(r.provider == "openai-batch" for r in rows)
        price = s.prices.price("gpt-4o-mini")
        assert price is not None
        full = price.cost(rows[0].input_tokens, rows[0].output_tokens)
        assert rows[0].usd == pytest.approx(full * 0.5)
        s.close()


def forget_saved_batch_id(out: Path) -> None:
    """Drop the batch id from the state file, as a run that died between creating the batch and saving its id."""
    state_path = out.with_name(out.name + ".state.json")
    state = json.loads(state_path.read_text())
    del state["batches"][0]["batch_id"]
    state_path.write_text(json.dumps(state))


def test_batch_finds_a_batch_created_but_not_saved(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        q = _questions(tmp_path)
        run_batch(q, out, s, poll_s=0.0, max_wait_s=0.0)
        forget_saved_batch_id(out)
        report = run_batch(q, out, s, poll_s=0.0)
        assert report.answered == 3 and server.api.count("POST", "/v1/batches") == 1
        s.close()


def _write(path: Path, *lines: object) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _lines(out: Path) -> dict[str, dict[str, object]]:
    return {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}


def _llm_rows(s: Stages, model: str) -> int:
    return sum(1 for r in s.ledger.rows() if r.stage == "llm" and r.model == model and r.status != "refused")


def test_bad_lines_are_reported_and_an_edit_keeps_the_finished_answers(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        hotel = {"id": "a", "question": "What is the hotel limit in Paris?"}
        train = {"id": "c", "question": "How are trains booked?"}
        bad = {"id": "b", "question": "Which hotel class may staff book?", "where": "colour = 'red'"}
        q = _write(tmp_path / "q.jsonl", hotel, bad, "not json", train)
        report = run_batch(q, out, s, poll_s=0.0)
        # the bad lines are named with their line and id; the others are answered, nothing bad is paid for
        assert report.answered == 2 and report.pending == 0 and len(report.invalid) == 2
        assert (
            "q.jsonl:2 (id 'b')" in report.invalid[0] and "unknown filter field 'colour'" in report.invalid[0]
        )
        assert "q.jsonl:3 (id '3')" in report.invalid[1] and "not valid JSON" in report.invalid[1]
        lines = _lines(out)
        assert (
            lines["b"]["status"] == "invalid"
            and lines["b"]["line"] == 2
            and lines["3"]["status"] == "invalid"
        )
        assert server.api.count("POST", "/v1/batches") == 1 and _llm_rows(s, "gpt-4o-mini") == 1
        # the fixed file has another hash: the unchanged lines keep their answers, only the fixed one is asked
        q = _write(q, hotel, {**bad, "where": None}, train)
        report = run_batch(q, out, s, poll_s=0.0)
        assert report.answered == 3 and report.invalid == []
        assert server.api.count("POST", "/v1/batches") == 2 and _llm_rows(s, "gpt-4o-mini") == 2
        assert _llm_rows(s, "scripted") == 1
        assert [r["status"] for r in _lines(out).values()] == ["ok", "ok", "ok"]
        # a changed question is asked again, under the same id
        q = _write(q, hotel, {**bad, "where": None}, {**train, "question": "Who books trains?"})
        run_batch(q, out, s, poll_s=0.0)
        assert _llm_rows(s, "scripted") == 2 and _lines(out)["c"]["question"] == "Who books trains?"
        s.close()


def test_a_state_file_of_an_older_ragcli_is_resumed_or_explained(tmp_path: Path) -> None:
    import hashlib

    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out, q = tmp_path / "answers.jsonl", _questions(tmp_path)
        run_batch(q, out, s, poll_s=0.0, max_wait_s=0.0)
        state_path = out.with_name(out.name + ".state.json")
        state = json.loads(state_path.read_text())
        del state["version"]  # as written before records had keys
        for rec in [*state["done"].values(), *state["pending"].values()]:
            del rec["key"]
        state["input_sha"] = hashlib.sha256(q.read_bytes()).hexdigest()
        state_path.write_text(json.dumps(state))
        report = run_batch(q, out, s, poll_s=0.0)
        assert report.answered == 3 and server.api.count("POST", "/v1/batches") == 1
        assert _llm_rows(s, "scripted") == 1
        state["input_sha"] = "another file"
        state_path.write_text(json.dumps(state))
        with pytest.raises(InputError, match=r"move .*answers\.jsonl\.state\.json aside"):
            run_batch(q, out, s, poll_s=0.0)
        s.close()


def test_a_line_without_sources_is_refused_without_an_llm_call(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "answers.jsonl"
        q = _write(
            tmp_path / "q.jsonl",
            {"id": "none", "question": "How are trains booked?"},
            {"id": "own", "question": "How are trains booked?", "where": "source != 'nowhere.md'"},
        )
        # --where applies to the lines that set none; a line's own filter replaces it
        report = run_batch(q, out, s, where="source = 'nowhere.md'", poll_s=0.0)
        lines = _lines(out)
        assert report.answered == 1 and report.failed == 1
        assert lines["none"]["status"] == "refused" and lines["none"]["answer"] == NO_SOURCES_ANSWER
        assert "the filter matched no chunk" in str(lines["none"]["error"])
        assert "prompt.no_sources: refuse" in str(lines["none"]["error"])
        assert lines["own"]["status"] == "ok" and lines["own"]["citations"]
        assert _llm_rows(s, "scripted") == 1 and server.api.count("POST", "/v1/files") == 0
        s.close()


def test_the_line_reports_the_tier_that_answered_after_a_cascade(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "home": str(tmp_path),
            "collection": "t",
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            # the strong tier is an OpenAI-compatible model without a batch price: answered at once
            "tiers": [
                {"type": "scripted"},
                {"type": "openai", "model": "strong", "base_url": "http://127.0.0.1:9", "api_key_env": None},
            ],
            "router": {"cascade": {"enabled": True}},
            "cost": {"use_litellm_prices": False},
        }
    )
    cheap = ScriptedLLM(["Bananas are purple on Tuesdays [1]."], model_name="cheap")
    strong = ScriptedLLM(["The hotel limit in Paris is 250 euros per night [1]."], model_name="strong")
    s = Stages.from_config(cfg, parser=PlainTextParser(), tiers=[cheap, strong])
    assert not ingest([SAMPLES / "travel-policy.md"], s).failed
    out = tmp_path / "answers.jsonl"
    run_batch(
        _write(tmp_path / "q.jsonl", {"id": "a", "question": "What is the hotel limit in Paris?"}), out, s
    )
    line = _lines(out)["a"]
    assert line["tier"] == 1 and line["routed_tier"] == 0 and line["model"] == "strong"
    cascade = line["cascade"]
    assert (
        isinstance(cascade, list) and [c["tier"] for c in cascade] == [0, 1] and cascade[0]["check"] == "fail"
    )
    assert _llm_rows(s, "cheap") == 1 and _llm_rows(s, "strong") == 1
    s.close()


def test_an_out_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        with pytest.raises(InputError, match=r"--out .*afile.*: cannot make its folder"):
            run_batch(_questions(tmp_path), tmp_path / "afile" / "o.jsonl", s, poll_s=0.0)
        assert _llm_rows(s, "scripted") == 0 and server.api.seen == []
        s.close()


def test_a_missing_out_folder_is_made(tmp_path: Path) -> None:
    with FakeBatchServer() as server:
        s = _stages(tmp_path, server.base_url)
        out = tmp_path / "new" / "deeper" / "o.jsonl"
        run_batch(_questions(tmp_path), out, s, poll_s=0.0)
        assert out.is_file() and out.read_text().strip()
        s.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope\n", "q.jsonl:1 (id '1'): not valid JSON"),
        ('{"id": 1}\n', "q.jsonl:1 (id '1'): each line needs a non-empty"),
        ('{"id": 1, "question": "a"}\n' * 2, "q.jsonl:2 (id '1'): id '1' appears twice"),
    ],
)
def test_questions_file_errors(tmp_path: Path, text: str, message: str) -> None:
    q = tmp_path / "q.jsonl"
    q.write_text(text)
    assert message in read_questions(q)[-1]["error"]


def test_cli_query_batch(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ragcli.cli import app

    runner = CliRunner()
    with FakeBatchServer():
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(
            f"home: {tmp_path}\nembedder: {{type: hash, dim: 64}}\nllm: {{type: scripted}}\n"
            "store: {type: qdrant, path: " + str(tmp_path / "q") + "}\n"
        )
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.txt").write_text("The hotel limit in Paris is 250 euros per night.\n")
        assert runner.invoke(app, ["ingest", str(docs), "--config", str(cfg)]).exit_code == 0
        out = tmp_path / "answers.jsonl"
        result = runner.invoke(
            app, ["query", "--batch", str(_questions(tmp_path)), "--out", str(out), "--config", str(cfg)]
        )
        assert result.exit_code == 0, result.output
        assert "answered 3" in result.output and len(out.read_text().splitlines()) == 3
    usage = runner.invoke(app, ["query", "--config", str(cfg)])
    assert usage.exit_code == 64 and "--batch" in usage.output
    both = runner.invoke(app, ["query", "q?", "--batch", str(_questions(tmp_path)), "--out", str(out)])
    assert both.exit_code == 64 and "not both" in both.output
    args = ["query", "--batch", str(_questions(tmp_path)), "--out", str(out), "--config", str(cfg)]
    shown = runner.invoke(app, [*args, "--show-prompt"])
    assert shown.exit_code == 64 and "--show-prompt cannot be used with --batch" in shown.output
    where = runner.invoke(app, [*args, "--where", "team = 'x'"])
    assert where.exit_code == 64 and "filter field 'team' is not filterable" in where.output
    (tmp_path / "afile").write_text("x")
    nodir = runner.invoke(app, [*args[:3], "--out", str(tmp_path / "afile" / "a.jsonl"), *args[5:]])
    assert nodir.exit_code == 64 and "cannot make its folder" in nodir.output
    bad = _write(tmp_path / "bad.jsonl", {"id": "x", "question": "Hotel?", "where": "team = 'x'"})
    partial = runner.invoke(app, ["query", "--batch", str(bad), "--out", str(out), "--config", str(cfg)])
    assert partial.exit_code == 2 and "bad.jsonl:1 (id 'x')" in partial.output, partial.output
