"""The local LLM through llama-cpp-python: the packaged SmolLM2-135M-Instruct GGUF by default. Free, offline, weak."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragcli.errors import BackendError, ResourceMissing
from ragcli.generation.llm_common import (
    MIN_OUTPUT_TOKENS,
    chat_dicts,
    check_local_args,
    fit_output,
    local_model_name,
    message_tokens,
)
from ragcli.resources import PACKAGED_LLM, resolve_llm_model
from ragcli.types import Completion, Message, Usage

log = logging.getLogger(__name__)

__all__ = ["MIN_OUTPUT_TOKENS", "LlamaCppLLM"]

_LOADED: weakref.WeakSet[LlamaCppLLM] = weakref.WeakSet()
"""Models with a llama.cpp context open, closed at exit while the interpreter is still whole."""


@atexit.register
def _close_loaded() -> None:
    # llama_cpp's own __del__ runs during interpreter teardown, after the module globals it calls are gone,
    # and prints `Exception ignored in: <function Llama.__del__> ... TypeError`; closing first avoids it.
    for llm in list(_LOADED):
        llm.close()


class LlamaCppLLM:
    """A GGUF chat model run in-process by llama.cpp, with the chat template stored in the GGUF file.

    Token counts come from the model's own tokenizer; dollars are 0. The model loads on first use.
    """

    def __init__(
        self,
        model: str = PACKAGED_LLM,
        context_window: int = 2048,
        temperature: float = 0.0,
        threads: int | None = None,
        seed: int = 0,
        repeat_penalty: float = 1.1,
    ) -> None:
        check_local_args(context_window, temperature)
        if not 1.0 <= repeat_penalty <= 2.0:
            raise ValueError(f"repeat_penalty must be between 1 and 2, got {repeat_penalty}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None (llama.cpp's default), got {threads}")
        self._model = model
        self._context_window = context_window
        self.temperature = temperature
        self.threads = threads
        self.seed = seed
        self.repeat_penalty = repeat_penalty
        self._llama: Any = None
        self._formatter: Any = None
        self._lock = threading.Lock()  # a llama.cpp context is not safe to use from two threads at once
        self._counter: Any = None  # counts tokens before (or without) loading the model
        self._counter_failed = False

    @property
    def model_name(self) -> str:
        return local_model_name(self._model)

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def token_count_is_estimate(self) -> bool:
        return False

    @property
    def model_path(self) -> Path:
        return resolve_llm_model(self._model)

    def _load(self) -> Any:
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
        except ImportError as exc:
            raise ResourceMissing(
                "llama-cpp-python is not installed; run "
                "`CMAKE_ARGS=-DGGML_NATIVE=OFF pip install llama-cpp-python` (compiles in ~4 min), "
                "or use `llm: {type: transformers}` in the config"
            ) from exc
        path = self.model_path
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"n_ctx": self._context_window, "verbose": False, "seed": self.seed}
        if self.threads is not None:
            kwargs["n_threads"] = self.threads
            kwargs["n_threads_batch"] = self.threads
        try:
            self._llama = llama_cpp.Llama(model_path=str(path), **kwargs)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp could not load {path}: {exc}") from exc
        log.info("loaded %s in %.2fs", path.name, time.perf_counter() - t0)
        _LOADED.add(self)
        return self._llama

    def close(self) -> None:
        """Free the llama.cpp model and context now (it loads again on next use)."""
        with self._lock:
            llama, self._llama, self._formatter = self._llama, None, None
            _LOADED.discard(self)
        if llama is not None:
            try:
                llama.close()
            except Exception as exc:  # freeing must never turn a finished command into a failure
                log.debug("closing llama.cpp failed: %s", exc)

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        if self._llama is None and not self._counter_failed:
            # Counting alone (context budgets, `query --no-answer`) never loads the model: the GGUF's tokenizer
            # through `tokenizers` gives llama.cpp's counts (gguf_token_counter.py) in milliseconds.
            try:
                if self._counter is None:
                    from ragcli.generation.gguf_token_counter import GGUFTokenCounter

                    self._counter = GGUFTokenCounter(self.model_path)
                return int(self._counter.count(text))
            except Exception as exc:  # no transformers/gguf to convert with: the model counts
                log.info("counting tokens with the model itself (%s)", exc)
                self._counter_failed = True
        llama = self._load()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the whole prompt as the model sees it: messages rendered with the GGUF's chat template."""
        llama = self._load()
        try:
            if self._formatter is None:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                meta = llama.metadata
                vocab = llama._model
                self._formatter = Jinja2ChatFormatter(
                    template=meta["tokenizer.chat_template"],
                    eos_token=vocab.token_get_text(llama.token_eos()),
                    bos_token=vocab.token_get_text(llama.token_bos()),
                )
            prompt = self._formatter(messages=chat_dicts(messages)).prompt
            return len(llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        except Exception as exc:  # no template in the file, or llama_cpp internals changed: estimate
            log.debug("cannot render the chat template (%s); estimating prompt tokens", exc)
            return message_tokens(self.count_tokens, messages) + 2

    def _fit_output(self, messages: Sequence[Message], max_tokens: int) -> tuple[int, int]:
        """Prompt tokens, and the output tokens that fit in the window (see `llm_common.fit_output`)."""
        needed = self.prompt_tokens(messages)
        return needed, fit_output(
            needed,
            max_tokens,
            context_window=self._context_window,
            model_name=self.model_name,
            fix="lower packing.budget_tokens or prompt.max_output_tokens, or raise llm.context_window",
        )

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        """What a call can cost before it is made: a local model is free."""
        prompt = sum(self.count_tokens(m.content) for m in messages)
        return Usage(input_tokens=prompt, output_tokens=max_tokens, usd=0.0, calls=1)

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        """Generate an answer. Raises `BudgetExceeded` before generating if the prompt cannot fit."""
        with self._lock:
            llama = self._load()
            _, max_tokens = self._fit_output(messages, max_tokens)
            t0 = time.perf_counter()
            try:
                out = llama.create_chat_completion(
                    messages=chat_dicts(messages),
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                )
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"llama.cpp failed on {self.model_name}: {exc}") from exc
            seconds = time.perf_counter() - t0
        text = out["choices"][0]["message"].get("content") or ""
        u = out.get("usage") or {}
        usage = Usage(
            input_tokens=int(u.get("prompt_tokens", 0)),
            output_tokens=int(u.get("completion_tokens", 0)),
            usd=0.0,
            calls=1,
        )
        return Completion(text, self.model_name, usage, seconds, provider="local")

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        """Yield text pieces as they are generated, then the final `Completion` with real token counts."""
        with self._lock:
            llama = self._load()
            prompt, max_tokens = self._fit_output(messages, max_tokens)
            t0 = time.perf_counter()
            pieces: list[str] = []
            chunks = 0
            try:
                for chunk in llama.create_chat_completion(
                    messages=chat_dicts(messages),
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                    repeat_penalty=self.repeat_penalty,
                    stream=True,
                ):
                    delta = chunk["choices"][0].get("delta", {}).get("content")
                    if delta:
                        chunks += 1
                        pieces.append(delta)
                        yield delta
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"llama.cpp failed on {self.model_name}: {exc}") from exc
            seconds = time.perf_counter() - t0
        text = "".join(pieces)
        # llama.cpp streams one piece per generated token (multi-byte characters may merge pieces)
        output = max(chunks, self.count_tokens(text)) if text else 0
        yield Completion(text, self.model_name, Usage(prompt, 0, output, 0.0, 1), seconds, provider="local")
