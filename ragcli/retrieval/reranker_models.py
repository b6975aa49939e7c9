"""Where a reranker model comes from: `trained:NAME`, a local folder, the packaged encoder, or a hub id.

No trained cross-encoder ships offline, so `ragcli train reranker --name NAME` writes one under
`<home>/rerankers/NAME` and a config names it `model: trained:NAME`. A model that cannot be found or loaded
raises `ResourceMissing` naming the model and the fix: a configured reranker is never skipped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ragcli.errors import ResourceMissing
from ragcli.resources import PACKAGED_EMBEDDER, embedding_model_dir, ragcli_home
from ragcli.trained_models import warn_if_gated_out

log = logging.getLogger(__name__)

TRAINED_PREFIX = "trained:"


def rerankers_dir(home: Path | None = None) -> Path:
    """The folder holding trained rerankers, one sub-folder per name."""
    return (home or ragcli_home()) / "rerankers"


def trained_names(home: Path | None = None) -> list[str]:
    root = rerankers_dir(home)
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []


def resolve_reranker_model(model: str, home: Path | None = None) -> str:
    """A folder or hub id that a model loader can open.

    A trained reranker (or a folder with a ragcli card) that failed its deployment gate is still loaded, with
    a warning: the config asked for it.

    Raises:
        ResourceMissing: `trained:NAME` names no trained reranker.
    """
    if model.startswith(TRAINED_PREFIX):
        name = model[len(TRAINED_PREFIX) :]
        path = rerankers_dir(home) / name
        if not (path / "config.json").is_file():
            have = ", ".join(trained_names(home)) or "none yet"
            raise ResourceMissing(
                f"reranker {model!r} not found at {str(path)!r} (trained rerankers: {have}); train it with "
                f"`ragcli train reranker --pairs FILE --name {name}` (or --corpus/--queries/--qrels)"
            )
        warn_if_gated_out(model, path, "rerankers")
        return str(path)
    if model in (PACKAGED_EMBEDDER, f"sentence-transformers/{PACKAGED_EMBEDDER}"):
        log.warning(
            "reranker model %s is the packaged embedding encoder: its cross-encoder head is untrained, so "
            "its scores mean nothing; train one with `ragcli train reranker`",
            model,
        )
        return str(embedding_model_dir())
    local = Path(model).expanduser()
    if local.is_dir():
        warn_if_gated_out(model, local, "rerankers")
    return str(local) if local.exists() else model


def load_failed(model: str, exc: BaseException) -> ResourceMissing:
    """The error for a reranker that would not load, with the ways to fix it."""
    return ResourceMissing(
        f"reranker model {model!r} could not be loaded ({type(exc).__name__}: {exc}). No pretrained reranker "
        "ships offline: train one with `ragcli train reranker --name NAME ...` and set "
        "`model: trained:NAME`, "
        "give a local model folder, or allow hub downloads (HF_HUB_OFFLINE=0, with internet); "
        "or set `reranker: {type: none}`"
    )
