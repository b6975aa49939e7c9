"""The local LM's reading of a prompt, as a router feature: the mean of one layer's hidden states.

The local tier reads every prompt anyway, so its inner representation is a second view of the prompt that costs no
money. A causal LM's middle layers carry what a sentence encoder trained on paraphrases does not: on RouteLLM's
GSM8K and MMLU outcomes, the packaged SmolLM2-135M's layer-8 states appended to the MiniLM embedding raised the
router's held-out APGR (benchmarks/results/routing.md). Only the first `layer` blocks run (no LM head); the prompt
is cut to `max_tokens` tokens.

`LMSpec` names the view (model, layer, tokens, scale); `LMVectorizer` computes raw vectors; `LMFeatures` holds the
standardisation fitted on a router's training prompts and appends the scaled vectors to an embedding, at training
and at query time alike.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ragcli.errors import InputError
from ragcli.generation.llm_common import local_model_name
from ragcli.resources import PACKAGED_LLM

FloatMatrix = npt.NDArray[np.float32]

LM_SCALES = (0.05, 0.1, 0.2)
"""The strengths tried for the LM view when none is given (beside no LM view at all), picked by cross-validation:
the view is standardised, then multiplied by the scale, so it weighs against the unit-norm embedding."""

LM_FEW_LABELS = 2000
"""Below this many training labels the view was not measured to help: on RouteLLM's outcomes it lowered held-out
APGR with 760 labels (0.603 against 0.627), was even with 1,520 (0.640 against 0.634) and helped with 5,320 (0.681
against 0.662): with few labels, choosing among more options overfits the cross-validation."""


@dataclass(frozen=True)
class LMSpec:
    """Which LM view a router reads.

    Args:
        layer: The hidden state after this many blocks (1 up to the model's depth).
        model: The local model: the packaged SmolLM2 (default), a GGUF file or a transformers folder.
        max_tokens: Prompts are cut to this many tokens.
        scale: The weight of the standardised view; None: picked by cross-validation from `LM_SCALES` or none.
    """

    layer: int
    model: str = PACKAGED_LLM
    max_tokens: int = 256
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.layer < 1:
            raise InputError(
                f"the LM layer must be at least 1 (hidden state after that many blocks), got {self.layer}"
            )
        if self.max_tokens < 1:
            raise InputError(f"the LM view's max_tokens must be at least 1, got {self.max_tokens}")
        if self.scale is not None and not self.scale > 0:
            raise InputError(
                f"the LM view's scale must be above 0 (leave it out to pick by CV), got {self.scale}"
            )

    @property
    def name(self) -> str:
        """What the raw vectors depend on (a cache key)."""
        return f"{local_model_name(self.model)}/layer{self.layer}/max{self.max_tokens}"


class PromptVectorizer(Protocol):
    """Raw vectors of prompts, one row each (`LMVectorizer`, or a fake in tests)."""

    @property
    def name(self) -> str: ...

    def vectors(self, prompts: Sequence[str]) -> FloatMatrix: ...


class LMVectorizer:
    """Mean-pooled hidden states of a local causal LM after `spec.layer` blocks, under transformers on the CPU."""

    def __init__(self, spec: LMSpec, batch_size: int = 16) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch

                from ragcli.generation.transformers_llm import load_causal_lm

                model, tok = load_causal_lm(self.spec.model, "the router's LM view", dtype=torch.float32)
                base = model.model
                depth = len(base.layers)
                if self.spec.layer > depth:
                    raise InputError(
                        f"the LM {local_model_name(self.spec.model)!r} has {depth} blocks; "
                        f"pick a layer from 1 to {depth}, got {self.spec.layer}"
                    )
                # hidden_states[k] is the state after k blocks (the final norm comes only after the last one kept)
                base.layers = base.layers[: self.spec.layer + 1]
                base.config.num_hidden_layers = self.spec.layer + 1
                tok.padding_side = "right"
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                self._model, self._tok = base, tok
        return self._model, self._tok

    def vectors(self, prompts: Sequence[str]) -> FloatMatrix:
        import torch

        base, tok = self._load()
        out = np.zeros((len(prompts), int(base.config.hidden_size)), dtype=np.float32)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths batch together
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                enc = tok(
                    [prompts[i] or " " for i in batch],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.spec.max_tokens,
                )
                hidden = base(**enc, output_hidden_states=True).hidden_states[self.spec.layer]
                mask = enc["attention_mask"].unsqueeze(-1).float()
                out[batch] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy()
        return out


@dataclass(frozen=True, eq=False)
class LMFeatures:
    """The LM view as a router reads it: raw vectors standardised on the training prompts, times `spec.scale`."""

    spec: LMSpec
    mean: FloatMatrix
    std: FloatMatrix

    @classmethod
    def fit(cls, raw: FloatMatrix, spec: LMSpec, scale: float) -> LMFeatures:
        raw = np.asarray(raw, dtype=np.float32)
        return cls(replace(spec, scale=scale), raw.mean(axis=0), raw.std(axis=0) + 1e-6)

    @property
    def scale(self) -> float:
        assert self.spec.scale is not None
        return self.spec.scale

    def apply(self, emb: FloatMatrix, raw: FloatMatrix) -> FloatMatrix:
        """`emb` with the scaled, standardised LM view of the same prompts appended."""
        raw = np.asarray(raw, dtype=np.float32)
        if raw.shape[1] != self.mean.shape[0]:
            raise InputError(
                f"the router's LM view ({self.spec.name}) has {self.mean.shape[0]} numbers per prompt, "
                f"got {raw.shape[1]}: is it the same model?"
            )
        view = self.scale * (raw - self.mean) / self.std
        return np.hstack([np.asarray(emb, dtype=np.float32), view]).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "model": s.model,
            "layer": s.layer,
            "max_tokens": s.max_tokens,
            "scale": s.scale,
            "dim": len(self.mean),
        }

    def arrays(self) -> dict[str, FloatMatrix]:
        return {"lm_mean": self.mean, "lm_std": self.std}

    @classmethod
    def from_card(cls, card: Mapping[str, Any], arrays: Mapping[str, Any]) -> LMFeatures:
        spec = LMSpec(
            layer=int(card["layer"]),
            model=str(card["model"]),
            max_tokens=int(card["max_tokens"]),
            scale=float(card["scale"]),
        )
        return cls(spec, np.asarray(arrays["lm_mean"], np.float32), np.asarray(arrays["lm_std"], np.float32))
