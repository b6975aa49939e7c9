"""Embedding speed of the packaged MiniLM: torch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8 (dynamic).

sentence-transformers' own `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (this venv has
5.x), so the model is exported here with `torch.onnx.export` and run with onnxruntime directly (mean pooling +
L2 norm, as the model's sentence-transformers modules do). Also measures batching sorted by length vs unsorted.

    .venv/bin/python benchmarks/ingest_embed_backends.py [--data DIR] [--texts 256]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import default_data, header, write_section


def texts_from_scifact(data: Path, n: int) -> list[str]:
    out = []
    with (data / "scifact_beir" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            words = rec["text"].split()
            # chunk-sized pieces of varied length, like the chunker's output
            for start in range(0, len(words), 170):
                out.append(" ".join(words[start : start + 170]))
            if len(out) >= n:
                break
    random.Random(0).shuffle(out)
    return out[:n]


def ort_embed(session: Any, tok: Any, texts: list[str], batch: int) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=256, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--texts", type=int, default=256)
    args = ap.parse_args()
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from ragcli.resources import embedding_model_dir

    model_dir = str(embedding_model_dir())
    texts = texts_from_scifact(args.data, args.texts)
    st = SentenceTransformer(model_dir, device="cpu")
    st.encode(texts[:8])
    rows = []

    t0 = time.perf_counter()
    ref = st.encode(texts, batch_size=32, normalize_embeddings=True)
    rows.append(
        ("torch fp32, sentence-transformers (sorts by length inside encode)", time.perf_counter() - t0, 1.0)
    )

    t0 = time.perf_counter()
    unsorted = np.concatenate(
        [
            st.encode(texts[i : i + 32], batch_size=32, normalize_embeddings=True)
            for i in range(0, len(texts), 32)
        ]
    )
    rows.append(("torch fp32, batches of 32 in input order (no global sort)", time.perf_counter() - t0,
                 float(np.mean(np.sum(unsorted * ref, axis=1)))))  # fmt: skip

    tok = AutoTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "minilm.onnx"
        int8 = Path(tmp) / "minilm-int8.onnx"
        hf = AutoModel.from_pretrained(model_dir).eval()

        class Encoder(torch.nn.Module):
            """Keyword call of the transformer (its positional order changed across transformers versions)."""

            def __init__(self) -> None:
                super().__init__()
                self.m = hf

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                out = self.m(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                )
                return out.last_hidden_state

        dummy = tok(["hello world"], return_tensors="pt")
        with torch.no_grad():
            torch.onnx.export(
                Encoder().eval(),
                (dummy["input_ids"], dummy["attention_mask"], dummy["token_type_ids"]),
                str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={k: {0: "b", 1: "s"} for k in ("input_ids", "attention_mask", "token_type_ids")}
                | {"last_hidden_state": {0: "b", 1: "s"}},
                opset_version=17,
                dynamo=False,
            )
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8 (dynamic quantization)", int8)):
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            ort_embed(sess, tok, texts[:8], 8)
            t0 = time.perf_counter()
            vecs = ort_embed(sess, tok, texts, 32)
            rows.append((name, time.perf_counter() - t0, float(np.mean(np.sum(vecs * ref, axis=1)))))
    base = rows[0][1]
    table = "\n".join(
        f"| {name} | {secs:.1f} | {len(texts) / secs:.2f} | {base / secs:.2f}x | {cos:.4f} |"
        for name, secs, cos in rows
    )
    body = (
        header(f"python benchmarks/ingest_embed_backends.py --texts {args.texts}")
        + f"\n{len(texts)} SciFact passages of up to 170 words (chunk-sized), batch 32, one process, one after the "
        "other. `cosine vs torch`: mean cosine between each backend's vector and torch fp32's for the same text "
        "(1.0 = identical).\n\n| backend | seconds | texts/s | speed-up | cosine vs torch |\n"
        "| --- | --- | --- | --- | --- |\n" + table
    )
    print(body)
    write_section("Embedding back-ends and batching (MiniLM on CPU)", body)


if __name__ == "__main__":
    main()
