"""Issue 9, item 1: the README's Python blocks run verbatim with the real local models, and exit cleanly (no
`Exception ignored in: Llama.__del__` traceback at interpreter exit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_issue9_public_api import ROOT, readme_python_blocks

pytestmark = pytest.mark.integration


def test_readme_python_blocks_run_as_written(tmp_path: Path) -> None:
    env = dict(os.environ, RAGCLI_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for block in readme_python_blocks():
        r = subprocess.run(
            [sys.executable, "-c", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert r.returncode == 0, f"{block}\n--- stderr:\n{r.stderr}"
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
        assert r.stdout.strip(), "the example prints the answer, its citations and its usage"
