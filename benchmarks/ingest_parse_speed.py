"""Parse seconds of the same book as HTML and PDF: unstructured with spaCy sentence counting vs ragcli's regex.

`before` is `UnstructuredParser(sentence_splitter="spacy")` (unstructured's own narrative-text check, spaCy
sentence splitting per element), `after` the default (`regex`). Both in one process, alternating, repeated;
the spaCy model is loaded before the first timing so neither side pays for it. Elements are compared
(kind, text, heading level, page).

    .venv/bin/python benchmarks/ingest_parse_speed.py [--data DIR] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest_common import default_data, header, loadavg, write_section


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    from ragcli.ingest.unstructured_parser import UnstructuredParser

    book = args.data / "docs_corpus" / "gutenberg_pride_and_prejudice"
    files = [book / "1342-h.htm", book / "1342-pdf.pdf"]
    parsers = {s: UnstructuredParser(sentence_splitter=s) for s in ("spacy", "regex")}
    parsers["spacy"].parse(book / "1342-0.txt")  # warm: imports
    import unstructured.nlp.tokenize as tok

    from ragcli.ingest.unstructured_parser import prepare_unstructured

    prepare_unstructured()  # the packaged spaCy model, never a download
    tok.pos_tag("Warm the spaCy model up.")
    load = [loadavg()]
    rows = []
    for f in files:
        secs: dict[str, list[float]] = {"spacy": [], "regex": []}
        elements = {}
        for _ in range(args.repeats):
            for name, parser in parsers.items():
                t0 = time.perf_counter()
                doc = parser.parse(f)
                secs[name].append(time.perf_counter() - t0)
                elements[name] = [(e.kind, e.text, e.heading_level, e.page) for e in doc.elements]
                print(f.name, name, f"{secs[name][-1]:.1f}s", len(doc.elements), flush=True)
        same = sum(1 for a, b in zip(elements["spacy"], elements["regex"], strict=False) if a == b)
        before, after = statistics.median(secs["spacy"]), statistics.median(secs["regex"])
        rows.append(
            f"| {f.name} | {before:.1f} | {after:.1f} | {before / after:.2f}x | "
            f"{same:,} of {len(elements['spacy']):,} ({len(elements['regex']):,} after) |"
        )
    load.append(loadavg())
    body = (
        header(f"python benchmarks/ingest_parse_speed.py --repeats {args.repeats}")
        + f"- load average at start {load[0]}, at end {load[1]} (2 cores)\n\n"
        "The same book (Pride and Prejudice) as HTML and PDF, parsed by `UnstructuredParser` (HTML main "
        "content, PDF fast strategy); median seconds of the repeats, both sides alternating in one process. "
        "`identical elements`: same kind, text, heading level and page at the same position.\n\n"
        "| file | before: spaCy sentences, s | after: regex sentences, s | speed-up | identical elements |\n"
        "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
    print(body)
    write_section("Parse seconds, same book as HTML and PDF (spaCy vs regex sentence counting)", body)


if __name__ == "__main__":
    main()
