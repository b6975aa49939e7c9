"""Issue 9, item 1: the README's library example runs as written; `from ragcli import ingest` is the function.

The README's Python blocks run here on the sample documents with one substitution, `load_config("local")` ->
a config with the hash embedder and the scripted LLM (no models, a few seconds). The same blocks run verbatim,
with the real models, in `tests/integration/test_readme_snippets.py`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def readme_python_blocks() -> list[str]:
    """Every ```python block of the README that uses the library, in order.

    Blocks that are clients of a running `ragcli serve` (the `openai` SDK pointed at the gateway) run against a
    live server in tests/unit/test_serve_clients.py instead.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return [b for b in blocks if "from ragcli" in b or "import ragcli" in b]


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"RAGCLI_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_from_ragcli_import_ingest_is_the_function_even_after_the_subpackage_loads(tmp_path: Path) -> None:
    code = (
        "import sys, ragcli\n"
        "assert 'torch' not in sys.modules and 'ragcli.pipelines' not in sys.modules\n"
        "import ragcli.ingest.hash_embedder, ragcli.pipelines.stages\n"
        "from ragcli import QueryOptions, Stages, answer, ingest, load_config\n"
        "assert callable(ingest) and ingest.__module__ == 'ragcli.pipelines.ingest_pipeline', ingest\n"
        "assert ragcli.ingest is ingest\n"
        "from ragcli.ingest.hash_embedder import HashEmbedder\n"  # the subpackage still imports
        "import ragcli.ingest.ids\n"
        "from ragcli import ingest as again\n"
        "assert again is ingest\n"
        "assert 'torch' not in sys.modules\n"
    )
    r = _run(code, tmp_path)
    assert r.returncode == 0, r.stderr


def test_readme_has_a_library_example() -> None:
    blocks = readme_python_blocks()
    assert blocks and any("from ragcli import" in b and "ingest(" in b for b in blocks)


def test_readme_python_blocks_run_with_fake_models(tmp_path: Path) -> None:
    cfg = tmp_path / "fake.yaml"
    data: dict[str, Any] = {"embedder": {"type": "hash"}, "llm": {"type": "scripted"}}
    cfg.write_text(yaml.safe_dump(data))
    for block in readme_python_blocks():
        assert 'load_config("local")' in block, block
        code = block.replace('load_config("local")', f"load_config({str(cfg)!r})")
        r = _run(code, tmp_path)
        assert r.returncode == 0, f"{block}\n--- stderr:\n{r.stderr}"
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
        assert "A scripted answer" in r.stdout  # ans.text printed


def test_llama_cpp_llm_closes_its_model_at_exit() -> None:
    from ragcli.generation import llama_cpp_llm as mod

    class FakeLlama:
        closed = 0

        def close(self) -> None:
            FakeLlama.closed += 1

    llm = mod.LlamaCppLLM()
    llm._llama = FakeLlama()
    mod._LOADED.add(llm)
    mod._close_loaded()  # what atexit runs before the interpreter tears down llama_cpp's module globals
    assert FakeLlama.closed == 1 and llm._llama is None and llm not in mod._LOADED
    llm.close()  # closing twice is harmless
    assert FakeLlama.closed == 1
