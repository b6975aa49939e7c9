"""`ragcli doctor`: find and prepare every offline resource, and say which package supplies a missing one."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

from ragcli import resources
from ragcli.errors import ResourceMissing


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _check(name: str, probe: Callable[[], str], *, required: bool = True) -> Check:
    try:
        return Check(name, True, probe(), required)
    except ResourceMissing as exc:
        return Check(name, False, str(exc), required)


def _module(name: str, install: str) -> Callable[[], str]:
    def probe() -> str:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ResourceMissing(f"python module {name!r} is not installed; run `pip install {install}`")
        return spec.origin or name

    return probe


def _tiktoken() -> str:
    resources.prepare_tiktoken()
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    return f"cl100k_base ok ({len(enc.encode('hello world'))} tokens for 'hello world'), files in {os.environ['TIKTOKEN_CACHE_DIR']}"


def _packaged_fusion() -> str:
    from ragcli.retrieval.fusion import load_fusion

    model = load_fusion("packaged:minilm-scifact")
    gate = model.card.get("gate", {})
    return (
        f"packaged:minilm-scifact ({len(model.weights)} weights; gate {gate.get('delta', 0.0):+.3f} nDCG@10)"
    )


def _packaged_sentence_model() -> str:
    from ragcli.generation.sentence_model import load_sentence_model

    model = load_sentence_model("packaged:qa-sentences")
    return (
        f"packaged:qa-sentences ({len(model.weights)} weights, floor {model.floor}; used by the lean preset)"
    )


def _packaged_pair_model() -> str:
    from ragcli.generation.block_pairs import packaged_pair_model

    model = packaged_pair_model()
    return f"block pairs ({len(model.weights)} weights, {model.trained_on}; used by compression)"


def _packaged_unit_model() -> str:
    from ragcli.generation.unit_model import load_unit_model

    model = load_unit_model("packaged:qa-units")
    return f"packaged:qa-units ({len(model.trees)} trees, gate on {model.embedder}; compression.unit_model)"


def run_checks() -> list[Check]:
    """Every resource the embedded default needs, in the order a query touches them."""
    resources.offline_env()
    home = resources.ragcli_home()
    return [
        Check("home", True, f"{home} (set RAGCLI_HOME to move it)"),
        _check("qdrant engine", _module("qdrant_edge", "qdrant-edge-py==0.9.0")),
        _check("embedding model", lambda: str(resources.embedding_model_dir())),
        _check("sentence-transformers", _module("sentence_transformers", "sentence-transformers")),
        _check("packaged fusion", _packaged_fusion),
        _check("packaged sentence model", _packaged_sentence_model),
        _check("packaged block pair model", _packaged_pair_model),
        _check("packaged unit model", _packaged_unit_model),
        _check("local LLM weights", lambda: str(resources.local_llm_gguf())),
        _check("llama-cpp-python", _module("llama_cpp", "llama-cpp-python (CMAKE_ARGS=-DGGML_NATIVE=OFF)")),
        _check("tiktoken files", _tiktoken),
        _check("unstructured", _module("unstructured", "'unstructured[md,docx,html]'")),
        _check("spaCy model", lambda: str(resources.spacy_model_dir())),
        _check("openai SDK", _module("openai", "openai"), required=False),
        _check("anthropic SDK", _module("anthropic", "anthropic"), required=False),
        _check("FlagEmbedding", _module("FlagEmbedding", "FlagEmbedding"), required=False),
        _check("OpenVINO (int8 embeddings)", _module("openvino", "'ragcli[openvino]'"), required=False),
        _check("NNCF (quantizes them once)", _module("nncf", "'ragcli[openvino]'"), required=False),
        _check("int8 embedding model", _int8_embedder, required=False),
    ]


def _int8_embedder() -> str:
    from ragcli.ingest.openvino_encoder import int8_status

    return int8_status(resources.embedding_model_dir())
