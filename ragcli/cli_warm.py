"""The warm path of `ragcli query`: a running `ragcli serve` of the same config answers, this process prints.

It runs before anything heavy is imported (torch, sentence-transformers, onnxruntime, the store engine): a query
a warm server answers costs the CLI only its own start-up, and the embedded store stays with the one process that
owns it, so several CLI queries can run at once. The server is found by its discovery file
(`ragcli/serve/discovery.py`); one that cannot be reached is forgotten and the query runs here instead. Once the
query was sent, a failure is reported, never retried here: the server may already have spent money on it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ragcli.errors import BackendError, RagError
from ragcli.serve.discovery import QUERY_PATH, Unreachable, call, find_server, forget

log = logging.getLogger(__name__)


def query_server(cfg: Any, question: str, **options: Any) -> dict[str, Any] | None:
    """The `--json` form of the answer from a live server of `cfg`, or None when there is none to ask.

    `options` are `LocalQueryRequest` fields (`where`, `budget_tokens`, `no_answer`, `no_cache`, ...).
    """
    found = find_server(cfg)
    if found is None:
        return None
    info, name = found
    where = f"ragcli serve (pid {info.pid}, {info.host}:{info.port})"
    body = {"pipeline": name, "config_id": info.pipelines[name], "question": question, **options}
    try:
        status, raw = call(info, "POST", QUERY_PATH, body)
    except Unreachable as exc:
        log.info("%s cannot be reached (%s); querying in this process", where, exc)
        forget(info)
        return None
    except OSError as exc:
        raise BackendError(
            f"{where} broke off the query: {exc}; run it again, or add --no-server to query in this process"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise BackendError(f"{where} sent a reply that is not JSON (HTTP {status})") from None
    if status == 200:
        log.info("answered by %s", where)
        return dict(data)
    if status in (401, 404, 409):  # not the server this file promised: nothing ran, do it here
        log.info("%s refused the query (HTTP %d); querying in this process", where, status)
        return None
    error = data.get("error", {}) if isinstance(data, dict) else {}
    message = str(error.get("message") or f"{where} failed (HTTP {status})")
    raise BackendError(message) if error.get("backend", status >= 500) else RagError(message)


def answer_from_json(d: dict[str, Any]) -> Any:
    """An `Answer` back from its `--json` form, for the human printout."""
    from ragcli.types import Answer, Citation, Message, StageTrace, Usage

    trace = [
        StageTrace(t["stage"], t["seconds"], Usage(**t["usage"]), t.get("detail") or {}) for t in d["trace"]
    ]
    return Answer(
        **{
            **d,
            "citations": [Citation(**c) for c in d["citations"]],
            "usage": Usage(**d["usage"]),
            "trace": trace,
            "prompt": [Message(**m) for m in d.get("prompt", [])],
        }
    )
