"""Issue 9, item 7: the readability page whose article sits in a share-named container is read, not reported
empty, through the real parser (unstructured)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["source.html", "expected.html"])
def test_bug_1255978_is_read(data_dir: Path, name: str) -> None:
    from ragcli.ingest.unstructured_parser import UnstructuredParser

    page = data_dir / "docs_corpus" / "html_readability" / "bug-1255978" / name
    doc = UnstructuredParser().parse(page)
    text = " ".join(e.text for e in doc.elements)
    assert "Most people go to hotels for the pleasure of sleeping" in text
    assert "Share on Facebook" not in text
