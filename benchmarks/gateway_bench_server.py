"""The gateway that `gateway_load.py` measures: the local pipeline (qdrant-edge store, hash embedder) with a
scripted LLM priced at $1 / $2 per million tokens, so budgets move by real (small) amounts.

    python benchmarks/gateway_bench_server.py HOME PORT [DSN_ENV]

serves `HOME/bench.yaml` on 127.0.0.1:PORT in one process (the embedded store allows no more).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragcli.cost.prices import PriceTable
from ragcli.generation.scripted_llm import ScriptedLLM
from ragcli.types import Completion, Message, Usage

REPLY = "The rule is stated in the sources [1]."
MODEL = "priced-scripted"


class PricedScriptedLLM(ScriptedLLM):
    """The scripted LLM billed at the price table's rate for `priced-scripted`."""

    def __init__(self, prices: PriceTable, context_window: int = 512) -> None:
        super().__init__([REPLY], context_window, MODEL)
        self.prices = prices
        self.price_model = MODEL

    def _priced(self, usage: Usage) -> Usage:
        return self.prices.usage_for(MODEL, usage.input_tokens, usage.output_tokens)

    def estimate(self, messages: Sequence[Message], max_tokens: int) -> Usage:
        return self._priced(super().estimate(messages, max_tokens))

    def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        c = super().complete(messages, max_tokens=max_tokens)
        return Completion(c.text, c.model, self._priced(c.usage), c.latency_s, provider="bench")

    def stream(self, messages: Sequence[Message], *, max_tokens: int) -> Iterator[str | Completion]:
        for piece in super().stream(messages, max_tokens=max_tokens):
            yield (
                piece
                if isinstance(piece, str)
                else Completion(
                    piece.text, piece.model, self._priced(piece.usage), piece.latency_s, provider="bench"
                )
            )


def bench_config(home: Path, dsn_env: str | None = None) -> dict[str, Any]:
    return {
        "name": "bench",
        "home": str(home),
        "collection": "bench",
        "store": {"type": "qdrant_edge"},
        "filterable": {"tenant": "keyword"},
        "embedder": {"type": "hash", "dim": 64},
        "retrieval": {"top_k": 3},
        "packing": {"budget_tokens": 200},
        "prompt": {"max_output_tokens": 64},
        "llm": {"type": "scripted", "replies": [REPLY], "context_window": 512},
        "cost": {"prices": {MODEL: {"input": 1.0, "output": 2.0}}},
        "state": {"dsn_env": dsn_env},
    }


def build(home: Path, dsn_env: str | None = None) -> Any:
    """The gateway (its `Stages` built with the priced LLM and the state's ledger and budget store)."""
    from ragcli.config import parse_config
    from ragcli.pipelines.stages import Stages
    from ragcli.serve.gateway import Gateway
    from ragcli.state.build import open_state

    cfg = parse_config(bench_config(home, dsn_env))
    state = open_state(cfg, max_connections=16)
    llm = PricedScriptedLLM(PriceTable.load(cfg.cost))
    stages = Stages.from_config(cfg, llm=llm, ledger=state.ledger, budget_store=state.budgets)
    stages.store.count()  # open the embedded store once, before concurrent requests race to open it
    return Gateway({"bench": stages}, state)


def main() -> None:
    import uvicorn

    from ragcli.serve.app import create_app

    home, port = Path(sys.argv[1]), int(sys.argv[2])
    dsn_env = sys.argv[3] if len(sys.argv) > 3 else None
    app = create_app(build(home, dsn_env))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
