"""Every file of docs_corpus through the ingest pipeline; the same book from txt/htm/pdf/asciidoc compared.

Part 1 runs the real pipeline (unstructured parser, structure chunker measured with MiniLM's own tokenizer,
Qdrant's embedded engine) over the whole of docs_corpus; vectors come from the hash embedder, because only the
parse/chunk/write behaviour is measured here (throughput with the real model is `ingest_throughput.py`).
It reports every file's status and reason, and the chunk token distribution per profile.

Part 2 chunks Pride and Prejudice from each format and reports how far the chunk texts agree.

    .venv/bin/python benchmarks/ingest_docs_corpus.py [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import default_data, header, token_f1, tokens, write_section


def _stages(home: Path):  # type: ignore[no-untyped-def]
    from ragcli.config import load_config
    from ragcli.ingest.build import build_chunker
    from ragcli.ingest.hash_embedder import HashEmbedder
    from ragcli.ingest.sentence_transformer_embedder import SentenceTransformerEmbedder
    from ragcli.pipelines.stages import Stages

    cfg = load_config("local", overrides={"collection": "docs-corpus", "home": str(home)})
    chunker = build_chunker(cfg, SentenceTransformerEmbedder())  # MiniLM's tokenizer; the model never loads
    return cfg, Stages.from_config(cfg, embedder=HashEmbedder(384, max_tokens=256), chunker=chunker)


def part_corpus(data: Path) -> tuple[str, dict[str, list[int]]]:
    from ragcli.pipelines.ingest_pipeline import ingest

    corpus = data / "docs_corpus"
    with tempfile.TemporaryDirectory() as home:
        _, stages = _stages(Path(home))
        t0 = time.perf_counter()
        report = ingest([corpus], stages)
        secs = time.perf_counter() - t0
        per_profile: dict[str, list[int]] = defaultdict(list)
        from ragcli.retrieval.qdrant_edge_store import QdrantEdgeStore

        store = stages.store
        assert isinstance(store, QdrantEdgeStore)
        for _, payload in store._scroll(["content_type", "tokens"]):  # every stored chunk
            per_profile[str(payload.get("content_type"))].append(int(payload.get("tokens", 0)))
        stages.close()
    counts = Counter(f.status for f in report.files)
    lines = [
        f"{len(report.files)} files found (supported types; LICENSE/README/yaml/metadata files are walked too when "
        f"their type is supported): {dict(counts)}; {report.chunks_added} chunks; {secs:.0f} s "
        f"(parse {report.stage_seconds.get('parse', 0):.0f} s, chunk {report.stage_seconds.get('chunk', 0):.0f} s, "
        f"write {report.stage_seconds.get('write', 0):.0f} s). No crash.",
        "",
        "| file | status | reason |",
        "| --- | --- | --- |",
    ]
    for f in report.files:
        if f.status in ("failed", "empty"):
            rel = Path(f.path).relative_to(corpus.resolve())
            lines.append(f"| {rel} | {f.status} | {f.reason.replace('|', '/')} |")
    return "\n".join(lines), per_profile


def _norm(text: str) -> str:
    return " ".join(tokens(text))


def part_book(data: Path) -> str:
    from ragcli.ingest.unstructured_parser import UnstructuredParser

    _, stages = _stages(Path(tempfile.mkdtemp()))
    book = data / "docs_corpus" / "gutenberg_pride_and_prejudice"
    parser = UnstructuredParser()
    chunks: dict[str, list[str]] = {}
    info: dict[str, str] = {}
    for name in ("1342-0.txt", "1342-h.htm", "1342-pdf.pdf", "book.asciidoc"):
        t0 = time.perf_counter()
        doc = parser.parse(book / name)
        doc.content_type = "prose"  # the same profile for every format, so only extraction differs
        cs = stages.chunker.chunk(doc)
        chunks[name] = [c.text for c in cs]
        toks = [c.tokens for c in cs]
        info[name] = (
            f"{len(cs)} chunks, {statistics.mean(toks):.0f} mean / {max(toks)} max tokens, "
            f"{time.perf_counter() - t0:.0f} s"
        )
    ref = "1342-0.txt"
    rows = []
    ref_norm = [_norm(t) for t in chunks[ref]]
    for name, texts in chunks.items():
        norm = [_norm(t) for t in texts]
        exact = len(set(norm) & set(ref_norm)) / max(1, len(set(ref_norm)))
        whole = token_f1(" ".join(norm), " ".join(ref_norm))[2]
        # best match of each reference chunk among the other format's chunks at a similar position
        best = []
        for i, r in enumerate(ref_norm):
            j = int(i * len(norm) / max(1, len(ref_norm)))
            window = norm[max(0, j - 15) : j + 16]
            best.append(max((token_f1(r, w)[2] for w in window), default=0.0))
        good = sum(1 for b in best if b >= 0.9) / max(1, len(best))
        rows.append(
            f"| {name} | {info[name]} | {whole:.3f} | {exact:.1%} | {statistics.mean(best):.3f} | {good:.1%} |"
        )
    return (
        "Chunk texts of each format against the .txt edition's (text lower-cased, punctuation dropped). "
        "`whole-book F1`: bag of words of all chunks; `identical chunks`: share of the .txt chunks found verbatim; "
        "`best-match F1`: mean over .txt chunks of the best token F1 among the other format's chunks at the same "
        "position (±15); `≥0.9`: share of .txt chunks with such a near-identical partner.\n\n"
        "| format | chunks | whole-book F1 | identical chunks | best-match F1 | best-match ≥ 0.9 |\n"
        "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )


def distribution(per_profile: dict[str, list[int]]) -> str:
    rows = [
        "| profile | chunks | min | p50 | p90 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for prof, toks in sorted(per_profile.items()):
        s = sorted(toks)

        def q(p: float, s: list[int] = s) -> int:
            return s[min(len(s) - 1, int(p * len(s)))]

        rows.append(f"| {prof} | {len(s)} | {s[0]} | {q(0.5)} | {q(0.9)} | {q(0.99)} | {s[-1]} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--skip-book", action="store_true")
    ap.add_argument("--only-book", action="store_true")
    args = ap.parse_args()
    cmd = "python benchmarks/ingest_docs_corpus.py"
    if args.only_book:
        book_md = part_book(args.data)
        print(book_md)
        write_section(
            "Same book, four formats (Pride and Prejudice)", header(cmd + " --only-book") + "\n" + book_md
        )
        return
    corpus_md, per_profile = part_corpus(args.data)
    print(corpus_md)
    write_section(
        "Every file of docs_corpus",
        header(cmd)
        + "\nReal parser, chunker (MiniLM tokenizer, local preset: max 256, min 48) and Qdrant edge "
        "store; hash vectors (embedding speed is measured separately).\n\n" + corpus_md,
    )
    write_section(
        "Chunk token distribution per profile (docs_corpus)",
        header(cmd) + "\nTokens are MiniLM's, special tokens and the breadcrumb included (what is embedded); "
        "the hard maximum is 256.\n\n" + distribution(per_profile),
    )
    if not args.skip_book:
        book_md = part_book(args.data)
        print(book_md)
        write_section("Same book, four formats (Pride and Prejudice)", header(cmd) + "\n" + book_md)


if __name__ == "__main__":
    main()
