"""HTML main-text extraction vs the gold `expected.html` of the readability test pages: token-level F1.

Compares ragcli's parser (main-content extraction, then unstructured's HTML partitioner) with unstructured on
the whole page, and with trafilatura / readability-lxml when they are installed.

    .venv/bin/python benchmarks/ingest_html_extraction.py [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import default_data, header, token_f1, write_section


def gold_text(path: Path) -> str:
    import lxml.html

    return str(lxml.html.fromstring(path.read_text(encoding="utf-8")).text_content())


def ragcli_text(path: Path) -> str:
    from ragcli.ingest.unstructured_parser import UnstructuredParser

    doc = UnstructuredParser().parse(path)
    return "\n".join(e.text for e in doc.elements)


def unstructured_whole_page(path: Path) -> str:
    from ragcli.ingest.unstructured_parser import prepare_unstructured

    prepare_unstructured()
    from unstructured.partition.html import partition_html

    return "\n".join(e.text for e in partition_html(filename=str(path)))


def trafilatura_text(path: Path) -> str:
    import trafilatura

    return trafilatura.extract(path.read_text(encoding="utf-8", errors="replace")) or ""


def readability_text(path: Path) -> str:
    import lxml.html
    from readability import Document

    html = Document(path.read_text(encoding="utf-8", errors="replace")).summary()
    return str(lxml.html.fromstring(html).text_content())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    args = ap.parse_args()
    pages = sorted(p for p in (args.data / "docs_corpus" / "html_readability").iterdir() if p.is_dir())
    methods: dict[str, Callable[[Path], str]] = {
        "ragcli (main content + unstructured)": ragcli_text,
        "unstructured, whole page": unstructured_whole_page,
    }
    for name, fn, module in (
        ("trafilatura", trafilatura_text, "trafilatura"),
        ("readability-lxml", readability_text, "readability"),
    ):
        try:
            __import__(module)
            methods[name] = fn
        except ImportError:
            pass
    rows = []
    for name, fn in methods.items():
        scores: list[tuple[float, float, float]] = []
        failures = 0
        t0 = time.perf_counter()
        for page in pages:
            gold = gold_text(page / "expected.html")
            try:
                pred = fn(page / "source.html")
            except Exception as exc:  # a page the method cannot read scores 0
                print(f"{name}: {page.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                pred, failures = "", failures + 1
            scores.append(token_f1(pred, gold))
        secs = time.perf_counter() - t0
        p, r, f = (statistics.mean(s[i] for s in scores) for i in range(3))
        med = statistics.median(s[2] for s in scores)
        rows.append(
            f"| {name} | {len(pages)} | {p:.3f} | {r:.3f} | {f:.3f} | {med:.3f} | {failures} | {secs:.1f} |"
        )
        print(rows[-1])
    body = (
        header("python benchmarks/ingest_html_extraction.py")
        + "\nToken-level (bag of words) precision/recall/F1 of the extracted text against the gold main text "
        "(`expected.html`), mean over pages.\n\n"
        "| method | pages | precision | recall | F1 | median F1 | errors | seconds |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )
    write_section("HTML main-text extraction (readability pages)", body)


if __name__ == "__main__":
    main()
