"""The gateway's work between HTTP and the library: who is calling, may they, and one pipeline call.

HTTP parsing and responses are in `app.py`; this module knows nothing of HTTP beyond the status an error maps to.
A caller is an API key (see `key_store.py`) with a tenant scope that every query it makes is ANDed with, a
requests-per-minute limit and a dollars-per-day limit held in the shared budget store.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ragcli.cost.protocols import Limit
from ragcli.errors import BackendError, BudgetExceeded, ConfigError, InputError, RagError, ResourceMissing
from ragcli.pipelines.query_pipeline import QueryOptions, answer
from ragcli.pipelines.stages import Stages
from ragcli.retrieval.filter_parser import parse_where
from ragcli.retrieval.filters import Filter, all_of
from ragcli.serve.key_store import KeyRecord, split_key, verify
from ragcli.serve.openai_schema import (
    ChatCompletionRequest,
    ChatMessageIn,
    EmbeddingRequest,
    FeedbackRequest,
)
from ragcli.serve.rate_limiter import TokenBucketRateLimiter
from ragcli.state.build import State
from ragcli.types import Answer, Message

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """An error for the client: HTTP status, OpenAI error type and code, and a message safe to show."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.headers = headers or {}
        self.param = param


@dataclass(frozen=True)
class Limits:
    """Request limits: past any of them the client gets a 4xx that names the limit."""

    max_body_bytes: int = 1_000_000
    max_messages: int = 100
    max_question_chars: int = 8_000
    max_embedding_inputs: int = 256
    default_requests_per_minute: int | None = None
    """For keys that set none; None: no rate limit."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's public facts (never its secret)."""

    key_id: str
    tenant: str
    scope: dict[str, Any] | str | None
    usd_per_day: float | None = None
    requests_per_minute: int | None = None
    pipelines: tuple[str, ...] = ()

    @classmethod
    def of(cls, k: KeyRecord) -> Caller:
        return cls(k.key_id, k.tenant, k.scope, k.usd_per_day, k.requests_per_minute, k.pipelines)


ANONYMOUS = Caller(key_id="", tenant="", scope=None)


@dataclass
class ChatResult:
    answer: Answer
    model: str
    cache: str
    tier: str
    seconds: float = 0.0
    """Time spent in the pipeline (`answer()`), for telling the gateway's own overhead apart."""


@dataclass
class Gateway:
    """The pipelines served (by `model` name), the shared state, and the limits. One per process."""

    pipelines: dict[str, Stages]
    state: State
    limits: Limits = field(default_factory=Limits)
    require_key: bool = True
    rate_limiter: TokenBucketRateLimiter = field(default_factory=TokenBucketRateLimiter)

    # ------------------------------------------------------------------ who may call

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a request from its `Authorization: Bearer <key>` header."""
        if not self.require_key:
            return ANONYMOUS
        if not authorization or not authorization.lower().startswith("bearer "):
            raise GatewayError(
                401,
                "no API key: send `Authorization: Bearer <key>` (create a key with `ragcli keys add`)",
                code="missing_api_key",
            )
        parts = split_key(authorization[7:].strip())
        record = self.state.keys.get(parts[0]) if parts else None
        if parts is None or record is None or not verify(record, parts[1]):
            # Never echo what was sent: it may be a real secret pasted in the wrong place.
            raise GatewayError(401, "invalid API key", code="invalid_api_key")
        if record.revoked:
            raise GatewayError(401, f"API key {record.key_id} has been revoked", code="invalid_api_key")
        caller = Caller.of(record)
        rpm = caller.requests_per_minute or self.limits.default_requests_per_minute
        if rpm is not None:
            wait = self.rate_limiter.check(caller.key_id, rpm)
            if wait is not None:
                raise GatewayError(
                    429,
                    f"rate limit of {rpm} requests per minute reached for key {caller.key_id}; "
                    f"retry in {wait:.1f}s",
                    type_="rate_limit_error",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(max(1, round(wait + 0.5)))},
                )
        return caller

    def pipeline(self, caller: Caller, model: str) -> Stages:
        stages = self.pipelines.get(model)
        if stages is None:
            raise GatewayError(
                404,
                f"model {model!r} is not served here; served pipelines: {', '.join(sorted(self.pipelines))}",
                code="model_not_found",
                param="model",
            )
        if caller.pipelines and model not in caller.pipelines:
            raise GatewayError(
                403,
                f"key {caller.key_id} may not use pipeline {model!r}",
                code="model_not_allowed",
                param="model",
            )
        return stages

    # ------------------------------------------------------------------ the calls

    def chat(
        self, caller: Caller, req: ChatCompletionRequest, on_token: Callable[[str], None] | None = None
    ) -> ChatResult:
        """Answer the last user message over the pipeline named by `req.model`, within the caller's scope."""
        stages = self.pipeline(caller, req.model)
        question, history, warnings = split_messages(req.messages, self.limits)
        extra = req.ragcli
        scope = _scope_filter(caller, req.model, stages.config.filterable)
        where = all_of(scope, parse_where(extra.where if extra else None, stages.config.filterable))
        opts = QueryOptions(
            where=where,
            history=history,
            top_k=extra.top_k if extra else None,
            budget_tokens=extra.budget_tokens if extra else None,
            on_token=on_token,
            tenant=caller.tenant,
        )
        hold = self._hold(caller, stages)
        t0 = time.perf_counter()
        try:
            ans = answer(question, stages, opts)
        except BaseException:
            self._release(hold)
            raise
        self._settle(hold, ans.usage.usd)
        ans.warnings[:0] = warnings
        return ChatResult(ans, req.model, cache_state(ans), tier_of(ans), time.perf_counter() - t0)

    def feedback(self, caller: Caller, req: FeedbackRequest) -> None:
        """Record a verdict on one of the caller's answers (and on its sources): labels for `ragcli train router`
        and `ragcli train reranker|embedder|fusion --from-feedback`. A query answered for another tenant, or
        by another pipeline, reads as not found."""
        from ragcli.generation.route_log import UnknownQuery

        stages = self.pipeline(caller, req.model)
        try:
            stages.route_log.add_feedback(
                req.query_id,
                req.verdict,
                relevant=req.relevant,
                irrelevant=req.irrelevant,
                tenant=caller.tenant,
            )
        except UnknownQuery:  # its text names the ledger's path: not for callers
            raise GatewayError(
                404,
                f"no answer with query id {req.query_id!r} from pipeline {req.model!r} for this key",
                code="query_not_found",
                param="query_id",
            ) from None
        if req.verdict == "bad" and stages.config.cache.enabled:
            # better a miss than the same wrong answer again: drop what this answer wrote or was served from
            stages.answer_cache.drop(stages.route_log.cache_entries_of(req.query_id))

    def embed(self, caller: Caller, req: EmbeddingRequest) -> tuple[list[list[float]], int, str]:
        """Embed texts with the pipeline's embedder: (vectors, tokens, model name). One ledger row."""
        stages = self.pipeline(caller, req.model)
        texts = [req.input] if isinstance(req.input, str) else list(req.input)
        if len(texts) > self.limits.max_embedding_inputs:
            raise GatewayError(
                413,
                f"{len(texts)} inputs in one request; at most {self.limits.max_embedding_inputs} are accepted "
                "(send several requests)",
                code="too_many_inputs",
                param="input",
            )
        if any(not t.strip() for t in texts):
            raise GatewayError(400, "an input is empty; every input must hold text", param="input")
        from ragcli.cost.ledger import LedgerRow

        hold = self._hold(caller, stages)
        t0 = time.perf_counter()
        try:
            emb = stages.embedder.embed(texts)
        except BaseException:
            self._release(hold)
            raise
        seconds = time.perf_counter() - t0
        self._settle(hold, emb.usage.usd)
        qid = uuid.uuid4().hex[:12]
        stages.ledger.record(LedgerRow.of("embed", stages.embedder.model_name, emb.usage, seconds, qid))
        return emb.vectors.tolist(), emb.usage.input_tokens, stages.embedder.model_name

    # ------------------------------------------------------------------ the key's daily dollars

    def _hold(self, caller: Caller, stages: Stages) -> tuple[str, float] | None:
        if caller.usd_per_day is None:
            return None
        day = datetime.now(UTC).date().isoformat()
        limit = Limit(
            f"key:{caller.key_id}:day:{day}",
            caller.usd_per_day,
            f"the daily limit of key {caller.key_id} (${caller.usd_per_day})",
        )
        estimate = worst_case_usd(stages)
        if estimate is None:
            raise GatewayError(
                400,
                f"key {caller.key_id} has a dollar limit, but pipeline {stages.config.name!r} uses a model with no "
                "known price, so a query's cost cannot be checked before it runs; add the model under cost.prices",
                code="price_unknown",
            )
        hold_id = uuid.uuid4().hex
        try:
            self.state.budgets.reserve(hold_id, [limit], estimate)
        except BudgetExceeded as exc:
            raise GatewayError(429, str(exc), type_="insufficient_quota", code="insufficient_quota") from None
        return hold_id, estimate

    def _settle(self, hold: tuple[str, float] | None, usd: float | None) -> None:
        if hold is not None:
            self.state.budgets.settle(hold[0], hold[1] if usd is None else usd)

    def _release(self, hold: tuple[str, float] | None) -> None:
        if hold is not None:
            self.state.budgets.release(hold[0])


def split_messages(messages: list[ChatMessageIn], limits: Limits) -> tuple[str, list[Message], list[str]]:
    """The question (the last message, from the user), the history before it, and warnings about what was dropped."""
    if len(messages) > limits.max_messages:
        raise GatewayError(
            413,
            f"{len(messages)} messages in one request; at most {limits.max_messages} are accepted "
            "(summarise or drop older turns)",
            code="too_many_messages",
            param="messages",
        )
    if messages[-1].role != "user":
        raise GatewayError(
            400,
            f"the last message must be the user's question, got role {messages[-1].role!r}",
            param="messages",
        )
    warnings: list[str] = []
    history: list[Message] = []
    texts = [_text(m, i) for i, m in enumerate(messages)]
    for m, text in zip(messages[:-1], texts[:-1], strict=True):
        if m.role in ("user", "assistant") and text:
            history.append(Message(m.role, text))
        elif m.role in ("system", "developer") and not warnings:
            warnings.append("client system message ignored: the pipeline's prompt.system applies")
    question = texts[-1].strip()
    if not question:
        raise GatewayError(
            400, "the last user message is empty; send the question as its content", param="messages"
        )
    if len(question) > limits.max_question_chars:
        raise GatewayError(
            413,
            f"the question has {len(question)} characters; at most {limits.max_question_chars} are accepted",
            code="question_too_long",
            param="messages",
        )
    return question, history, warnings


def _text(m: ChatMessageIn, index: int) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    pieces = []
    for part in m.content:
        if part.type != "text":
            raise GatewayError(
                400,
                f"messages[{index}] holds a {part.type!r} part; this gateway answers text only",
                param=f"messages[{index}].content",
            )
        pieces.append(part.text or "")
    return "".join(pieces)


def worst_case_usd(stages: Stages) -> float | None:
    """The most one query can cost: a full window of prompt and every output token, plus the query embedding."""
    llm = stages.llm
    prices = stages.prices
    price_model = str(getattr(llm, "price_model", llm.model_name))
    if llm.model_name == "scripted" or getattr(llm, "provider", "") == "local":
        llm_usd: float | None = 0.0
    else:
        llm_usd = prices.estimate_usd(price_model, llm.context_window, stages.config.prompt.max_output_tokens)
    emb_usd = prices.estimate_usd(stages.embedder.model_name, stages.embedder.max_tokens, 0)
    if llm_usd is None:
        return None
    return llm_usd + (emb_usd or 0.0)


def cache_state(ans: Answer) -> str:
    """`hit`, `miss` or `skip` from the answer cache's trace entries; `off` where the pipeline has no cache."""
    for t in ans.trace:
        if t.stage == "cache":  # a served entry is a `cache` stage (one ledger row, $0)
            return "hit"
        if t.stage == "cache_lookup":
            return "hit" if t.detail.get("hit") else ("skip" if t.detail.get("skipped") else "miss")
    return "off"


def _scope_filter(caller: Caller, model: str, filterable: Mapping[str, Any]) -> Filter | None:
    """The key's scope as a filter of this pipeline. A scope the pipeline cannot apply is the server's setup, not
    the request: a 500 that says what to fix (never a silent widening)."""
    if caller.scope is None:
        return None
    try:
        return parse_where(caller.scope, filterable)
    except InputError as exc:
        raise GatewayError(
            500,
            f"this key's tenant scope cannot be applied by pipeline {model!r}: {exc}; the server's operator must "
            "declare the scope's field under `filterable:` (and tag the documents with it), or give the key a "
            "scope this pipeline can filter on",
            type_="server_error",
            code="scope_not_filterable",
        ) from None


def scope_problems(keys: Sequence[Any], configs: Mapping[str, Any]) -> list[str]:
    """One line per active key whose scope a pipeline it may use cannot apply (checked when `serve` starts)."""
    found = []
    for k in keys:
        if k.revoked or k.scope is None:
            continue
        for name, cfg in configs.items():
            if k.pipelines and name not in k.pipelines:
                continue
            try:
                parse_where(k.scope, cfg.filterable)
            except InputError as exc:
                found.append(
                    f"key {k.key_id} (tenant {k.tenant!r}): pipeline {name!r} cannot apply its scope ({exc}); its "
                    "requests there will fail: declare the field under filterable: and tag the documents with it "
                    "(e.g. `ragcli ingest --meta tenant=acme`), or remake the key with --where or --unscoped"
                )
    return found


def tier_of(ans: Answer) -> str:
    """The model that answered, after the tier index where the router or cascade chose one (`1:gpt-4o-mini`)."""
    tier = None
    for t in ans.trace:
        if t.detail.get("tier") is not None:
            tier = t.detail["tier"]  # the last one: a cascade escalates after the route
    return ans.model if tier is None else f"{tier}:{ans.model}"


def status_of(exc: BaseException) -> GatewayError:
    """A library error as the client sees it (a message that names no secret: the adapters scrub them)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, BudgetExceeded):
        return GatewayError(400, str(exc), code="budget_exceeded")
    if isinstance(exc, InputError):
        return GatewayError(400, str(exc))
    if isinstance(exc, ConfigError):
        return GatewayError(500, f"the server's pipeline config is wrong: {exc}", type_="server_error")
    if isinstance(exc, ResourceMissing):
        return GatewayError(503, str(exc), type_="server_error", code="resource_missing")
    if isinstance(exc, BackendError):
        status = 503 if exc.retryable else 502
        return GatewayError(
            status, f"the model provider failed: {exc}", type_="upstream_error", code="upstream_error"
        )
    if isinstance(exc, RagError):
        return GatewayError(400, str(exc))
    return GatewayError(500, "internal error; the server log has the details", type_="server_error")
