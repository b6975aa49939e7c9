"""The local LLM under transformers: the fallback where llama-cpp-python could not be built.

A GGUF file (the packaged SmolLM2-135M-Instruct by default) is de-quantized once and cached as a plain
transformers model under `<RAGCLI_HOME>/models/`, because loading a GGUF takes 16-45 s on every start.
transformers refuses `save_pretrained` on a GGUF-loaded model, so its weights are copied into a fresh model of the
same config, and that is saved. Slower than llama.cpp (~10 tok/s on 2 cores), free, offline.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragcli.errors import BackendError, ResourceMissing
from ragcli.generation.llm_common import chat_dicts, check_local_args, fit_output, local_model_name
from ragcli.resources import PACKAGED_LLM, cache_dir, resolve_llm_model
from ragcli.types import Completion, Message, Usage

log = logging.getLogger(__name__)


def converted_dir(gguf: Path) -> Path:
    """Where the de-quantized copy of a GGUF file is cached."""
    return cache_dir("models") / f"{gguf.stem}-hf"


def transformers_folder(model: str) -> str:
    """A folder or hub id transformers can load for `model`: as given, or a GGUF file (the packaged SmolLM2 by
    default) de-quantized once into `converted_dir`."""
    if model != PACKAGED_LLM and not model.endswith(".gguf"):
        return model  # a transformers folder or a hub id (offline unless the user allows hub downloads)
    gguf = resolve_llm_model(model)
    target = converted_dir(gguf)
    if not (target / "config.json").is_file():
        _convert(gguf, target)
    return str(target)


def load_causal_lm(model: str, purpose: str, **kwargs: Any) -> tuple[Any, Any]:
    """The causal LM and its tokenizer for `model` (see `transformers_folder`), in eval mode; `kwargs` go to
    `from_pretrained`. `purpose` says in an error what needed the model."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ResourceMissing(
            f"transformers is not installed ({purpose} needs it); run `pip install 'ragcli[local]'`"
        ) from exc
    folder = transformers_folder(model)
    try:
        tok = AutoTokenizer.from_pretrained(folder)
        loaded = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except OSError as exc:
        raise ResourceMissing(
            f"cannot load the model {folder!r} for {purpose} with transformers: {exc}"
        ) from exc
    loaded.eval()  # type: ignore[no-untyped-call]
    return loaded, tok


def _convert(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning(
        "one-time conversion: de-quantizing %s for transformers into %s (one to three minutes; cached for later runs)",
        gguf.name,
        target,
    )
    t0 = time.perf_counter()
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except ImportError as exc:
        raise ResourceMissing(
            f"reading GGUF files with transformers needs the gguf package: {exc}; run `pip install gguf`"
        ) from exc
    # transformers refuses save_pretrained on a GGUF-loaded model: copy the weights into a fresh one
    fresh = AutoModelForCausalLM.from_config(loaded.config)  # type: ignore[no-untyped-call]
    fresh.load_state_dict(loaded.state_dict())
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    log.warning("conversion done in %.0fs: %s", time.perf_counter() - t0, target)


class TransformersLLM:
    """A causal LM chat model run by transformers on the CPU; token counts from its own tokenizer; $0."""

    def __init__(
        self,
        model: str = PACKAGED_LLM,
        context_window: int = 2048,
        temperature: float = 0.0,
        repeat_penalty: float = 1.1,
    ) -> None:
        check_local_args(context_window, temperature)
        self._model_ref = model
        self._context_window = context_window
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return local_model_name(self._model_ref)

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def token_count_is_estimate(self) -> bool:
        return False

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            self._model, self._tok = load_causal_lm(self._model_ref, "the local LLM")
        return self._model, self._tok

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        _, tok = self._load()
        return len(tok.encode(text, add_special_tokens=False))

    def _inputs(self, messages: Sequence[Message], max_tokens: int) -> tuple[Any, int]:
        """The tokenized prompt, and the output tokens that fit in the window (see `llm_common.fit_output`)."""
        _, tok = self._load()
        prompt = tok.apply_chat_template(
            chat_dicts(messages),
            tokenize=False,
            add_generation_prompt=True,
        )
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
        n = int(inputs["input_ids"].shape[1])
        return inputs, fit_output(
            n,
            max_tokens,
            context_window=self._context_window,
            model_name=self.model_name,
            fix="lower packing.budget_tokens or prompt.max_output_tokens",
        )

    def _gen_kwargs(self, max_tokens: int) -> dict[str, Any]:
        _, tok = self._load()
        kw: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": tok.eos_token_id,
            "repetition_penalty": self.repeat_penalty,
        }
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature)
        else:
            kw.update(do_sample=False)
        return kw

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        """What a call can cost before it is made: a local model is free."""
        prompt = sum(self.count_tokens(m.content) for m in messages)
        return Usage(input_tokens=prompt, output_tokens=max_tokens, usd=0.0, calls=1)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        import torch

        with self._lock:
            model, tok = self._load()
            inputs, max_tokens = self._inputs(messages, max_tokens)
            n = int(inputs["input_ids"].shape[1])
            t0 = time.perf_counter()
            try:
                with torch.no_grad():
                    out = model.generate(**inputs, **self._gen_kwargs(max_tokens))
            except RuntimeError as exc:
                raise BackendError(f"transformers failed to generate with {self.model_name}: {exc}") from exc
            seconds = time.perf_counter() - t0
        new = out[0][n:]
        text = tok.decode(new, skip_special_tokens=True)
        return Completion(text, self.model_name, Usage(n, 0, len(new), 0.0, 1), seconds, provider="local")

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        from transformers import TextIteratorStreamer

        with self._lock:
            model, tok = self._load()
            inputs, max_tokens = self._inputs(messages, max_tokens)
            n = int(inputs["input_ids"].shape[1])
            streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
            t0 = time.perf_counter()
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    model.generate(**inputs, **self._gen_kwargs(max_tokens), streamer=streamer)
                except BaseException as exc:  # surfaced in the caller's thread below
                    errors.append(exc)
                    streamer.end()  # type: ignore[no-untyped-call]

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            pieces: list[str] = []
            for piece in streamer:
                if piece:
                    pieces.append(piece)
                    yield piece
            worker.join()
            if errors:
                raise BackendError(f"transformers failed to generate with {self.model_name}: {errors[0]}")
            seconds = time.perf_counter() - t0
        text = "".join(pieces)
        output = len(tok.encode(text, add_special_tokens=False)) if text else 0
        yield Completion(text, self.model_name, Usage(n, 0, output, 0.0, 1), seconds, provider="local")
