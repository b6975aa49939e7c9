"""LLMLingua / LongLLMLingua prompt compression (the `llmlingua` package) behind the `Compressor` role.

For users with a GPU and a causal LM: tokens are dropped by the small model's perplexity. Measured here on a CPU
with the only offline causal LM (SmolLM2-135M, benchmarks/results/compression.md) it is seconds per 1,000 tokens
and keeps fewer answers than `SentenceCompressor`; its users also report ratios not honoured (#195) and ids cut
(#93, #149). It stays as an option to compare against, never a default. Install: `pip install 'ragcli[llmlingua]'`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from ragcli.errors import BackendError, ResourceMissing
from ragcli.generation.compression_types import Compressed, CompressionTarget
from ragcli.generation.protected_spans import find_spans, question_keys

_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")


class LegacyCacheModel:
    """A causal LM that takes and returns its key/value cache as per-layer `(keys, values)` tuples.

    llmlingua 0.2.2 slices and iterates `past_key_values` as such tuples; transformers 5 returns a `DynamicCache`
    (without `to_legacy_cache`), so every compression failed with "too many values to unpack" (microsoft/LLMLingua
    #210; the fix, PR #246, is not released). Everything else is the wrapped model's.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, *args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        if isinstance(past_key_values, (tuple, list)):
            from transformers import DynamicCache

            cache = DynamicCache()
            for layer, (keys, values) in enumerate(past_key_values):
                cache.update(keys, values, layer)
            past_key_values = cache
        out = self._model(*args, past_key_values=past_key_values, **kwargs)
        layers = getattr(getattr(out, "past_key_values", None), "layers", None)
        if layers is not None:
            out.past_key_values = tuple((layer.keys, layer.values) for layer in layers)
        return out


class LLMLinguaCompressor:
    """Compresses with llmlingua's `PromptCompressor` over a local causal LM.

    Args:
        count_tokens: the target model's token counter (the ratio is measured with it, not with the small LM's).
        model: a transformers folder or hub id, or `smollm2-135m-instruct` (the packaged GGUF, de-quantized once
            and cached by `transformers_llm.transformers_folder`).
        long: LongLLMLingua's question-aware mode (coarse ranking of the blocks by the question, then tokens).
        device: torch device map (`cpu`, `cuda`).
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        model: str = "smollm2-135m-instruct",
        long: bool = False,
        device: str = "cpu",
    ) -> None:
        if not model.strip():
            raise ValueError("model must name a causal LM (a folder, a hub id or smollm2-135m-instruct)")
        self.count = count_tokens
        self.model = model
        self.long = long
        self.device = device
        self._compressor: Any = None

    @property
    def name(self) -> str:
        return "longllmlingua" if self.long else "llmlingua"

    def _load(self) -> Any:
        if self._compressor is None:
            try:
                from llmlingua import PromptCompressor
            except ImportError as exc:
                raise ResourceMissing(
                    f"compression type llmlingua needs the llmlingua package ({exc}); run "
                    "`pip install 'ragcli[llmlingua]'` or use compression type sentences"
                ) from exc
            from ragcli.generation.transformers_llm import transformers_folder
            from ragcli.resources import prepare_tiktoken

            prepare_tiktoken()  # PromptCompressor calls tiktoken at construction
            folder = transformers_folder(self.model)
            try:
                self._compressor = PromptCompressor(model_name=folder, device_map=self.device)
            except Exception as exc:  # a third-party load failure: wrap it with the model named
                raise BackendError(f"llmlingua could not load {self.model!r} from {folder}: {exc}") from exc
            self._compressor.model = LegacyCacheModel(self._compressor.model)
        return self._compressor

    def compress(self, question: str, text: str, target: CompressionTarget) -> Compressed:
        """Compress `text` to `target` with llmlingua; the result is re-counted with `count_tokens`."""
        t0 = time.perf_counter()
        original = self.count(text) if text else 0
        budget = target.budget(original)
        spans = find_spans(text, question_keys(question))
        out = text
        if original > budget and budget > 0:
            pc = self._load()
            rate = max(0.01, min(1.0, budget / max(original, 1)))
            kwargs: dict[str, Any] = {"rate": rate, "force_tokens": ["\n"]}
            blocks = [b for b in _BLOCK_BREAK.split(text) if b.strip()]
            if self.long:
                kwargs.update(
                    question=question,
                    condition_in_question="after_condition",
                    reorder_context="original",
                    dynamic_context_compression_ratio=0.3,
                    condition_compare=True,
                    rank_method="longllmlingua",
                )
            try:
                result = pc.compress_prompt(blocks if self.long else [text], **kwargs)
            except Exception as exc:
                raise BackendError(f"llmlingua failed to compress a {original}-token text: {exc}") from exc
            out = str(result.get("compressed_prompt", ""))
            if self.long and question and out.rstrip().endswith(question.strip()):
                out = out.rstrip()[
                    : -len(question.strip())
                ].rstrip()  # it appends the question: not ours to send
        tokens = self.count(out) if out else 0
        return Compressed(
            text=out,
            original_tokens=original,
            tokens=tokens,
            target_tokens=budget,
            seconds=time.perf_counter() - t0,
            method=self.name,
            protected_total=len(spans),
            protected_kept=sum(1 for s in spans if text[s.start : s.end] in out),
        )
