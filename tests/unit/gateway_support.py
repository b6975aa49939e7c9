"""A gateway on fakes for tests: hash embedder, scripted LLM, qdrant-client :memory:, documents of three tenants.

`make_gateway()` builds it with SQLite state under a temp dir (or PostgreSQL with `dsn_env`), `LiveServer` runs it
under uvicorn on 127.0.0.1 for real clients (the openai SDK, curl).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import parse_config
from ragcli.ingest.plain_text_parser import PlainTextParser
from ragcli.pipelines.ingest_pipeline import ingest
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.qdrant_server_store import QdrantServerStore
from ragcli.serve.gateway import Gateway, Limits
from ragcli.serve.key_store import issue_key
from ragcli.state.build import open_state

TENANTS = ("acme", "globex", "initech")
TOPICS = ("hotel limits", "password rotation", "release checklist", "laptop returns")


def marker(tenant: str, i: int) -> str:
    return f"{tenant.upper()}SECRET{i}"


def write_docs(folder: Path) -> dict[str, list[Path]]:
    """Per tenant, one small file per topic; each holds a marker word only that tenant owns."""
    out: dict[str, list[Path]] = {}
    for tenant in TENANTS:
        d = folder / tenant
        d.mkdir(parents=True, exist_ok=True)
        out[tenant] = []
        for i, topic in enumerate(TOPICS):
            p = d / f"{tenant}-{i}.txt"
            p.write_text(
                f"{topic.title()} at {tenant}\n\nThe {topic} rule of {tenant} is {marker(tenant, i)}. "
                f"Ask the {tenant} office about {topic}.\n",
                encoding="utf-8",
            )
            out[tenant].append(p)
    return out


def config(home: Path, **over: Any) -> dict[str, Any]:
    return {
        "name": "fake",
        "home": str(home),
        "collection": "t",
        "store": {"type": "qdrant", "location": ":memory:"},
        "filterable": {"tenant": "keyword", "source": "keyword"},
        "embedder": {"type": "hash", "dim": 64},
        "retrieval": {"top_k": 3},
        "packing": {"budget_tokens": 300},
        "llm": {"type": "scripted", "replies": ["The answer is in the sources [1]."]},
        **over,
    }


@dataclass
class Built:
    gateway: Gateway
    stages: Stages
    docs: dict[str, list[Path]]
    keys: dict[str, str] = field(default_factory=dict)
    """tenant -> full key"""


def make_gateway(
    tmp: Path,
    *,
    limits: Limits | None = None,
    usd_per_day: float | None = None,
    rpm: int | None = None,
    priced: bool = False,
    add_keys: bool = True,
    **cfg_over: Any,
) -> Built:
    cfg = parse_config(config(tmp / "home", **({**PRICED, **cfg_over} if priced else cfg_over)))
    state = open_state(cfg)
    store = QdrantServerStore("t", location=":memory:")
    extra: dict[str, Any] = {}
    if priced:
        from ragcli.cost.prices import PriceTable

        extra["llm"] = PricedScriptedLLM(PriceTable.load(cfg.cost))
    stages = Stages.from_config(
        cfg, parser=PlainTextParser(), store=store, ledger=state.ledger, budget_store=state.budgets, **extra
    )
    docs = write_docs(tmp / "docs")
    for tenant, paths in docs.items():
        report = ingest(paths, stages, meta={"tenant": tenant})
        assert not report.failed, report.failed
    gw = Gateway({"fake": stages}, state, limits or Limits())
    built = Built(gw, stages, docs)
    for tenant in TENANTS if add_keys else ():
        record, full = issue_key(tenant, {"tenant": tenant}, usd_per_day=usd_per_day, requests_per_minute=rpm)
        state.keys.add(record)
        built.keys[tenant] = full
    return built


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 (a free port) in a thread: `with LiveServer(app) as s: s.base_url`."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class PricedScriptedLLM:
    """The scripted LLM with a price: its usage is billed at the price table's rate for `model_name`."""

    def __init__(self, prices: Any, model_name: str = "priced-scripted", context_window: int = 512) -> None:
        from ragcli.generation.scripted_llm import ScriptedLLM

        self._inner = ScriptedLLM(["The answer is in the sources [1]."], context_window, model_name)
        self.prices = prices
        self.price_model = model_name
        self.model_name = model_name
        self.context_window = context_window
        self.token_count_is_estimate = False
        self.prompts = self._inner.prompts

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def estimate(self, messages: Any, max_tokens: int) -> Any:
        prompt = sum(self.count_tokens(m.content) for m in messages)
        return self.prices.usage_for(self.model_name, prompt, max_tokens)

    def _bill(self, c: Any) -> Any:
        from ragcli.types import Completion

        usage = self.prices.usage_for(self.model_name, c.usage.input_tokens, c.usage.output_tokens)
        return Completion(c.text, c.model, usage, c.latency_s, provider="test")

    def complete(self, messages: Any, *, max_tokens: int) -> Any:
        return self._bill(self._inner.complete(messages, max_tokens=max_tokens))

    def stream(self, messages: Any, *, max_tokens: int) -> Any:
        for piece in self._inner.stream(messages, max_tokens=max_tokens):
            yield piece if isinstance(piece, str) else self._bill(piece)


PRICED = {"cost": {"prices": {"priced-scripted": {"input": 1.0, "output": 2.0}}}}
"""Config overrides that price `priced-scripted` at $1 / $2 per million tokens."""
