"""The route log (tiers, sources, cache links, verdicts) in the PostgreSQL state: the same answers as on SQLite,
and shared by every host, so feedback on one host labels an answer given on another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.errors import InputError
from ragcli.generation.route_log import RouteLog, UnknownQuery
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from tests.unit.postgres_support import pg_admin_dsn, pg_dsn  # noqa: F401

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "docs"


def _opened(kind: str, dsn: str, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two route logs on one store: two processes or hosts sharing the state."""
    if kind == "sqlite":
        logs = [RouteLog(tmp_path / "ledger.sqlite"), RouteLog(tmp_path / "ledger.sqlite")]
    else:
        from ragcli.state.postgres_database import PostgresDatabase
        from ragcli.state.postgres_route_log import PostgresRouteLog

        logs = [PostgresRouteLog(PostgresDatabase(dsn), owned=True) for _ in range(2)]
    try:
        yield logs[0], logs[1]
    finally:
        for log in logs:
            log.close()


@pytest.fixture(params=["sqlite", "postgres"])
def two_logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgres" else ""
    yield from _opened(request.param, dsn, tmp_path)


def test_the_same_labels_on_sqlite_and_postgres(two_logs: tuple[Any, Any]) -> None:
    here, there = two_logs
    here.record_route("q1", "hotel limit?", "small", "smollm2", "rule: short", tenant="acme")
    here.record_route(
        "q1", "hotel limit in Paris?", "big", "gpt-4o", "router 0.91", tenant="acme"
    )  # last wins
    here.record_sources("q1", "docs", [(1, "c-a"), (2, "c-b"), (3, "c-c")], "It is 250 euros [1][3].")
    here.record_route("q2", "taxi?", "small", "smollm2", tenant="acme")
    here.record_sources("q2", "docs", [(1, "c-d")], "Taxis are fine [1].")
    here.link_cache(
        "q3", "e-9", "served", "acme", question="taxis ok?", cached_question="taxi?", tier="semantic"
    )
    here.link_cache("q2", "e-9", "stored", "acme")

    # verdicts given on the other host
    there.add_feedback("q1", "good", relevant=[3], irrelevant=[2], tenant="acme")
    there.add_feedback("q2", "bad")
    there.add_feedback("q2", "good")  # the latest verdict wins
    there.add_feedback("q3", "bad", tenant="acme")
    with pytest.raises(UnknownQuery):
        there.add_feedback("q1", "good", tenant="other")  # another tenant's query reads as unknown
    with pytest.raises(UnknownQuery):
        there.add_feedback("nope", "good")
    with pytest.raises(InputError, match=r"has no source\(s\) \[7\]: its sources are 1, 2, 3"):
        there.add_feedback("q1", "good", relevant=[7])
    with pytest.raises(InputError, match="both --relevant and --irrelevant"):
        there.add_feedback("q1", "good", relevant=[1], irrelevant=[1])

    assert here.labels() == [
        {"prompt": "hotel limit in Paris?", "outcomes": {"big": "good"}},
        {"prompt": "taxi?", "outcomes": {"small": "good"}},
    ]
    judged = [(j.question, j.chunk_id, j.relevant, j.explicit) for j in here.judged_sources("docs")]
    assert judged == [
        ("hotel limit in Paris?", "c-b", False, True),
        ("hotel limit in Paris?", "c-c", True, True),
        ("taxi?", "c-d", True, False),  # a good answer's cited source, not judged one by one
    ]
    assert here.judged_sources("other") == []
    assert here.judged_hits() == [{"text_a": "taxi?", "text_b": "taxis ok?", "label": 0, "tier": "semantic"}]
    assert here.cache_entries_of("q2") == ["e-9"] and here.cache_entries_of("q1") == []


def test_answers_wait_for_a_verdict_and_a_judges_verdict_is_marked(two_logs: tuple[Any, Any]) -> None:
    here, there = two_logs
    here.record_route("q1", "hotel limit?", "small", "smollm2")
    here.record_sources("q1", "docs", [(1, "c-a"), (2, "c-b")], "It is 250 euros [1].")
    here.record_route("q2", "taxi?", "small", "smollm2")
    here.record_sources("q2", "docs", [], "Taxis are fine.")  # no sources: the answer is still kept
    here.record_route("q3", "train?", "big", "gpt-4o")  # routed, never answered: nothing to judge
    waiting = there.unjudged(10)
    assert [(u.query_id, u.answer, u.sources) for u in waiting] == [
        ("q1", "It is 250 euros [1].", [(1, "docs", "c-a"), (2, "docs", "c-b")]),
        ("q2", "Taxis are fine.", []),
    ]
    assert [u.query_id for u in there.unjudged(1)] == ["q1"]
    there.add_feedback("q1", "bad", judge="gpt-4o")
    assert [u.query_id for u in here.unjudged(10)] == ["q2"]
    here.add_feedback("q1", "good")  # a person's later verdict wins
    assert here.labels() == [{"prompt": "hotel limit?", "outcomes": {"small": "good"}}]
    with here._connect() as db:
        judges = [j for (j,) in db.execute(f"SELECT judge FROM {here.tables}feedback ORDER BY id")]
    assert judges == ["gpt-4o", ""]


def test_a_query_known_only_by_its_ledger_row(pg_dsn: str) -> None:  # noqa: F811
    """An answer with no route (a call recorded before routes were) can still be judged: the shared ledger has it."""
    from ragcli.cost.ledger import LedgerRow
    from ragcli.state.postgres_database import PostgresDatabase
    from ragcli.state.postgres_ledger import PostgresLedger
    from ragcli.state.postgres_route_log import PostgresRouteLog

    db = PostgresDatabase(pg_dsn)
    try:
        PostgresLedger(db).record(
            LedgerRow("2026-12-03T08:00:00+00:00", "q9", "llm", "openai", "gpt-4o-mini", 10, 0, 5, 0.001, 0.2)
        )
        log = PostgresRouteLog(db)
        assert log.known_query("q9") and not log.known_query("q8")
        log.add_feedback("q9", "good")
    finally:
        db.close()


def test_feedback_on_another_host_labels_the_answer(
    pg_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Host A answers through the query path; `ragcli feedback` and `ragcli router labels` run on host B (its own
    home and ledger file), both on the same PostgreSQL state."""
    monkeypatch.setenv("RAGCLI_PG_DSN", pg_dsn)

    def config(host: str) -> dict[str, Any]:
        return {
            "home": str(tmp_path / host),
            "store": {"type": "qdrant", "location": ":memory:"},
            "embedder": {"type": "hash", "dim": 64},
            "llm": {"type": "scripted", "replies": ["The limit is 250 euros [1]."]},
            "state": {"dsn_env": "RAGCLI_PG_DSN"},
            "cost": {"ledger": str(tmp_path / host / "ledger.sqlite")},
        }

    stages = Stages.from_config(
        parse_config(config("a")), parser=PlainTextParser(), llm=ScriptedLLM(["The limit is 250 euros [1]."])
    )
    try:
        ingest([SAMPLES / "travel-policy.md"], stages)
        ans = answer("What is the hotel limit?", stages, QueryOptions(tenant="acme"))
        assert type(stages.route_log).__name__ == "PostgresRouteLog"
    finally:
        stages.close()
    assert not (tmp_path / "a" / "ledger.sqlite").exists()  # nothing of it stayed on host A

    cfg_b = tmp_path / "b.yaml"
    cfg_b.write_text(yaml.safe_dump(config("b")))
    runner = CliRunner()
    judged = runner.invoke(app, ["feedback", ans.query_id, "good", "--relevant", "1", "-c", str(cfg_b)])
    assert judged.exit_code == 0, judged.output
    assert "recorded good" in judged.output
    out = tmp_path / "labels.jsonl"
    exported = runner.invoke(app, ["router", "labels", "--out", str(out), "-c", str(cfg_b)])
    assert exported.exit_code == 0, exported.output
    assert yaml.safe_load(out.read_text()) == {
        "prompt": "What is the hotel limit?",
        "outcomes": {"scripted": "good"},
    }
