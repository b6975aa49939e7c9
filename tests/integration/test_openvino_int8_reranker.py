"""`reranker.backend: openvino_int8`: a cross-encoder quantized once by `ragcli train quantize-reranker` on pairs
of the user's kind, kept only where its scores keep their order, refused with the fix where it is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")
pytest.importorskip("sentence_transformers")

from typer.testing import CliRunner

from ragcli.cli import app
from ragcli.errors import InputError, ResourceMissing
from ragcli.retrieval.cross_encoder_reranker import CrossEncoderReranker
from ragcli.retrieval.reranker_int8 import CARD, IR, MIN_PAIRS, quantize_cross_encoder
from tests.integration.test_openvino_int8_embedder import TEXTS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cross-encoder in a folder (the packaged encoder with a new one-logit head)."""
    from sentence_transformers import CrossEncoder

    from ragcli.resources import embedding_model_dir

    folder = tmp_path_factory.mktemp("int8-reranker") / "cross-encoder"
    CrossEncoder(str(embedding_model_dir()), num_labels=1).save(str(folder))
    return folder


def _pairs(start: int, n: int) -> list[tuple[str, str]]:
    return [(TEXTS[i], TEXTS[i + 1]) for i in range(start, start + n)]


def test_quantize_then_rerank_or_refuse(cross_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(ResourceMissing, match="ragcli train quantize-reranker"):
        CrossEncoderReranker(str(cross_encoder), backend="openvino_int8").score("q", ["p"])
    with pytest.raises(InputError, match=f"at least {MIN_PAIRS}"):
        quantize_cross_encoder(cross_encoder, _pairs(0, 10))

    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text(
        "".join(json.dumps({"query": q, "passage": p, "label": 0}) + "\n" for q, p in _pairs(0, 160))
    )
    done = CliRunner().invoke(
        app,
        ["train", "quantize-reranker", "--model", str(cross_encoder), "--pairs", str(pairs_file), "--json"],
    )
    assert done.exit_code == 0, done.output
    card = json.loads((cross_encoder / CARD).read_text())
    assert card["calibration_pairs"] == card["checked_pairs"] == 80 and card["max_length"] == 128
    assert not list(cross_encoder.glob(".*onnx"))  # the intermediate graph is gone
    queries, passages = [q for q, _ in _pairs(170, 40)], [p for _, p in _pairs(170, 40)]
    if not card["accepted"]:  # a scorer that does not keep fp32's order is never used
        assert not (cross_encoder / IR).exists()
        with pytest.raises(ResourceMissing, match="failed its check"):
            CrossEncoderReranker(str(cross_encoder), backend="openvino_int8").score("q", ["p"])
        return
    assert card["spearman"] >= 0.95 and (cross_encoder / IR).is_file()
    int8 = CrossEncoderReranker(str(cross_encoder), backend="openvino_int8")
    fp32 = CrossEncoderReranker(str(cross_encoder), backend="onnx")
    a = np.array([int8.score(q, [p])[0] for q, p in zip(queries, passages, strict=True)])
    b = np.array([fp32.score(q, [p])[0] for q, p in zip(queries, passages, strict=True)])
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    assert np.corrcoef(ra, rb)[0, 1] >= 0.9  # pairs it was neither calibrated nor checked on


def test_passage_cut_keeps_the_whole_passages_ids() -> None:
    """The tokenizer sees long passages cut at a space; the ids must be those of the whole passages, whatever the
    lengths of query and passage (short ones, long ones, one long word with no space, a query longer than half)."""
    from transformers import AutoTokenizer

    from ragcli.resources import embedding_model_dir
    from ragcli.retrieval.reranker_int8 import _feeds

    tok = AutoTokenizer.from_pretrained(str(embedding_model_dir()))
    text = " ".join(TEXTS)
    passages = [
        TEXTS[0],
        text[:3000],
        text[1000:1800],
        "x" * 2000,
        "antidisestablishment" * 60 + " " + text[:900],
        text[: 128 * 6 + 7],
    ]
    wanted = {"input_ids", "attention_mask", "token_type_ids"}
    for query in ("short question?", " ".join(TEXTS[5:9]), TEXTS[20][:200]):
        for max_length in (32, 128, 256):
            pairs = [(query, p) for p in passages]
            got = _feeds(tok, pairs, max_length, wanted)
            whole = tok(
                [query] * len(passages), passages, padding=True, truncation=True, max_length=max_length
            )
            for key in wanted:
                assert np.array_equal(got[key], np.asarray(whole[key])), (query[:20], max_length, key)


def test_train_reranker_quantizes_where_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ragcli train reranker --quantize` leaves the int8 model beside the trained one, from its training pairs."""
    monkeypatch.setenv("RAGCLI_HOME", str(tmp_path / "home"))
    pairs_file = tmp_path / "pairs.jsonl"
    rows = [(TEXTS[i], TEXTS[i + 1], 1) for i in range(80)] + [
        (TEXTS[i], TEXTS[i + 40], 0) for i in range(80)
    ]
    lines = [json.dumps({"query": q, "passage": p, "label": y}) for q, p, y in rows]
    pairs_file.write_text("\n".join(lines) + "\n")
    args = ["train", "reranker", "--pairs", str(pairs_file), "--name", "q8", "--epochs", "1", "--max-length", "64",
            "--batch-size", "16", "--negatives", "0", "--holdout", "0", "--json"]  # fmt: skip
    done = CliRunner().invoke(app, [*args, "--quantize"])
    assert done.exit_code == 0, done.output
    # stdout stays one JSON object; the int8 verdict is on stderr
    folder = Path(json.loads(done.stdout)["path"])
    card = json.loads((folder / CARD).read_text())
    assert card["max_length"] == 64 and card["calibration_pairs"] == card["checked_pairs"] == 80
    assert "int8 reranker: Spearman" in done.stderr
    skipped = CliRunner().invoke(app, [*args, "--no-quantize"])  # a retrain drops the old int8 model ...
    assert skipped.exit_code == 0, skipped.output
    assert not (folder / CARD).exists() and not (folder / IR).exists()  # ... and makes none when told not to
