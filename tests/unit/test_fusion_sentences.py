"""The fusion's sentence features: the question's cosine with each candidate's best sentence and first line,
their sentence vectors embedded once and kept, `ragcli train fusion --sentences`, and the query path using it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.config import parse_config
from ragcli.errors import ConfigError, InputError, ResourceMissing
from ragcli.ingest.hash_embedder import HashEmbedder
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.query_pipeline import QueryOptions, retrieve
from ragcli.pipelines.recorder import Recorder
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.build import build_sentence_vectors
from ragcli.retrieval.fusion import (
    FEATURES,
    SENTENCE_FEATURES,
    candidate_features,
    load_fusion,
)
from ragcli.retrieval.sentence_vectors import MAX_SEGMENTS, SentenceVectors, segments
from ragcli.train.fusion_training import fit_fusion
from tests.unit.test_fusion import SAMPLES, _cfg, _gate, _rows


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__(64)
        self.texts: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts += list(texts)
        return super().embed(texts)


def test_segments_are_lines_then_sentences_with_a_cap() -> None:
    text = "Hotel policy\nThe limit in Paris is 250 euros. Elsewhere it is 180 euros.\n\nAsk finance."
    assert segments(text) == ["Hotel policy", "The limit in Paris is 250 euros.", "Elsewhere it is 180 euros.",
                              "Ask finance."]  # fmt: skip
    assert len(segments("\n".join(f"Line {i}." for i in range(200)))) == MAX_SEGMENTS
    assert segments("") == [" "]  # an empty chunk still gets a row


def test_sentence_vectors_embed_a_chunk_once_and_keep_it_in_the_file(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    path = tmp_path / "sv.sqlite"
    sv = SentenceVectors(emb, path, memory=1)
    texts = [
        "Title one\nThe hotel limit is 250 euros. Taxis are refunded.",
        "Badges\nCollect it at reception.",
    ]
    mats = sv.matrices(texts)
    assert [m.shape for m in mats] == [(3, 64), (2, 64)] and sv.embedded == 5
    assert np.allclose(np.linalg.norm(mats[0], axis=1), 1.0)
    sv.matrices(texts + texts)  # memory keeps one chunk: the other comes back from the file
    assert sv.embedded == 5 and len(emb.texts) == 5
    sv.close()

    other = SentenceVectors(CountingEmbedder(), path)  # another process: nothing embedded again
    again = other.matrices(texts)
    assert other.embedded == 0 and np.allclose(again[0], mats[0], atol=1e-3)  # float16 in the file
    q = HashEmbedder(64).embed_query("hotel limit").vectors[0]
    scores = other.scores(q, texts)
    assert scores.shape == (2, 2)
    assert scores[0, 0] == pytest.approx(float((mats[0] @ q).max()), abs=1e-2)  # best sentence
    assert scores[0, 1] == pytest.approx(float(mats[0][0] @ q), abs=1e-2)  # first line
    other.close()

    class Renamed(CountingEmbedder):
        @property
        def model_name(self) -> str:
            return "another-model"

    renamed = SentenceVectors(Renamed(), path)  # vectors of another model are never mixed in ...
    renamed.matrices(texts[:1])
    assert renamed.embedded == 3
    renamed.close()
    first = SentenceVectors(CountingEmbedder(), path)  # ... nor do they replace the first model's
    first.matrices(texts)
    assert first.embedded == 0
    first.close()


def test_a_damaged_cache_file_names_itself_and_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "sv.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match=r"sentence-vector cache.*delete the file"):
        SentenceVectors(HashEmbedder(64), bad).matrices(["text"])


def _query(rng: random.Random, n: int = 30) -> tuple[list[tuple[str, float]], list[tuple[str, float]], str]:
    """Dense and BM25 rankings that say nothing about the relevant document: only its best sentence does."""
    docs = [f"d{i}" for i in range(n)]
    rel = rng.choice(docs[:15])
    dense = sorted(((d, rng.uniform(0.3, 0.6)) for d in docs), key=lambda x: -x[1])
    sparse = sorted(((d, rng.uniform(5.0, 15.0)) for d in docs), key=lambda x: -x[1])
    return dense, sparse, rel


def _scorer(rel: str, rng: random.Random):  # type: ignore[no-untyped-def]
    def scores(ids):  # type: ignore[no-untyped-def]
        return np.array([[0.9 if d == rel else rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.4)] for d in ids])

    return scores


def test_a_fusion_with_sentences_learns_them_saves_them_and_needs_them(tmp_path: Path) -> None:
    rng = random.Random(0)
    train = [_query(rng) for _ in range(60)]
    held = [_query(rng) for _ in range(30)]
    x, y = _rows(train, sentence_scores=[_scorer(r, rng) for _, _, r in train])
    assert x.shape == (60 * 20, len(FEATURES) + len(SENTENCE_FEATURES))
    model = fit_fusion("sent", x, y, depth=20, rrf_k=60, prefetch=30)
    assert model.uses_sentences and model.features == [*FEATURES, *SENTENCE_FEATURES]
    dense, sparse, rel = held[0]
    assert model.fuse(dense, sparse, 5, _scorer(rel, rng))[0][0] == rel
    with pytest.raises(ValueError, match="sentence_scores"):
        model.fuse(dense, sparse, 5)
    verdict = _gate(model, held, sentence_scores=[_scorer(r, rng) for _, _, r in held])
    assert verdict.deployable and verdict.delta > 0.3

    model.save(tmp_path / "sent")
    loaded = load_fusion(str(tmp_path / "sent"))
    assert loaded.uses_sentences and loaded.weights == pytest.approx(model.weights)
    card = json.loads((tmp_path / "sent" / "ragcli_fusion.json").read_text())
    card["features"] = [*FEATURES, "something_else"]
    (tmp_path / "sent" / "ragcli_fusion.json").write_text(json.dumps(card))
    with pytest.raises(ResourceMissing, match="retrain it with `ragcli train fusion`"):
        load_fusion(str(tmp_path / "sent"))
    assert candidate_features([], [], [], rrf_k=60, prefetch=2, sentences=np.zeros((0, 2))).shape == (
        0,
        len(FEATURES) + len(SENTENCE_FEATURES),
    )


def test_train_fusion_with_sentences_then_the_query_path_reads_them(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        ("hotel limit paris", "Travel\nThe hotel limit in Paris is 250 euros per night."),
        (
            "train travel class",
            "Trains\nTrains are booked in second class unless the trip exceeds four hours.",
        ),
        ("laptop encryption", "Laptops\nEvery laptop uses full-disk encryption before it leaves the office."),
        ("password length", "Passwords\nPasswords have at least 14 characters and never repeat."),
        ("first day badge", "Badges\nNew starters collect their badge at reception on their first day."),
        ("meal allowance", "Meals\nThe daily meal allowance abroad is 60 euros."),
        ("vpn required", "VPN\nUse the VPN on any network outside the office."),
        ("expense deadline", "Expenses\nExpenses are filed within 30 days of the trip."),
        ("mentor onboarding", "Mentors\nEach new starter is given a mentor for the first month."),
        ("phishing report", "Phishing\nReport phishing e-mails to the security team at once."),
    ]
    pairs.write_text("".join(json.dumps({"query": q, "passage": p, "label": 1}) + "\n" for q, p in rows))
    home = tmp_path / "home"
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(_cfg(home)))
    result = CliRunner().invoke(
        app,
        ["train", "fusion", "--pairs", str(pairs), "--name", "sent", "--sentences", "--holdout", "0.3",
         "-c", str(cfg_file), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(SENTENCE_FEATURES) <= set(out["report"]["weights"]) and out["gate"]["queries"] == 3
    assert (home / "sentence_vectors.sqlite").is_file()  # the candidates' sentences, kept for query time

    stages = Stages.from_config(parse_config(_cfg(home, "trained:sent")), parser=PlainTextParser())
    try:
        assert stages.fusion is not None and stages.fusion.uses_sentences
        report = ingest([SAMPLES / "travel-policy.md", SAMPLES / "security-handbook.md"], stages)
        assert not report.failed and "sentences" in report.stage_seconds
        embedded = stages.sentence_vectors.embedded
        assert embedded > 0  # the new chunks' sentences were embedded at ingest ...
        rec = Recorder(None, "q1")
        got = retrieve("What is the hotel limit in Paris?", stages, QueryOptions(), rec)
        assert got.hits and all(0.0 <= h.score <= 1.0 for h in got.hits)
        assert stages.sentence_vectors.embedded == embedded  # ... so a query embeds none
        assert next(t for t in rec.trace if t.stage == "search").detail["fusion"] == "fusion:sent"
    finally:
        stages.close()


def test_a_paid_embedder_cannot_serve_sentence_features(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            **_cfg(tmp_path, "trained:sent"),
            "embedder": {"type": "openai", "model": "text-embedding-3-small", "dim": 1536},
        }
    )
    with pytest.raises(ConfigError, match="paid API: use a fusion trained without --sentences"):
        build_sentence_vectors(cfg, HashEmbedder(64))


def test_an_ingest_does_not_need_the_fusion_the_config_names(tmp_path: Path) -> None:
    stages = Stages.from_config(
        parse_config(_cfg(tmp_path / "home", "trained:nope")), parser=PlainTextParser()
    )
    try:
        report = ingest([SAMPLES / "travel-policy.md"], stages)
        assert not report.failed and report.chunks_added > 0 and "sentences" not in report.stage_seconds
    finally:
        stages.close()
