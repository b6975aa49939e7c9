"""ragcli: cost-aware retrieval-augmented generation.

from ragcli import Stages, load_config, answer, ingest
stages = Stages.from_config(load_config("local"))
ingest(["docs/"], stages)
print(answer("What is X?", stages).text)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["QueryOptions", "Stages", "__version__", "answer", "ingest", "load_config"]

if TYPE_CHECKING:
    from ragcli.config import load_config
    from ragcli.pipelines.ingest_pipeline import ingest
    from ragcli.pipelines.query_pipeline import QueryOptions, answer
    from ragcli.pipelines.stages import Stages

_LAZY = {
    "load_config": "ragcli.config",
    "ingest": "ragcli.pipelines.ingest_pipeline",
    "answer": "ragcli.pipelines.query_pipeline",
    "QueryOptions": "ragcli.pipelines.query_pipeline",
    "Stages": "ragcli.pipelines.stages",
}


# The function `ingest` shares its name with the subpackage `ragcli.ingest`. Importing a submodule binds it as an
# attribute of its parent, so once anything imported `ragcli.ingest.*`, `from ragcli import ingest` gave the
# module, not the function. Import the subpackage now (its __init__ is only a docstring) and drop that binding:
# the import system binds a submodule only when it first loads, so `ingest` stays the function from here on.
importlib.import_module("ragcli.ingest")
globals().pop("ingest", None)


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so `import ragcli` stays cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ragcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
