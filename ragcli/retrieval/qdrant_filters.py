"""Translate the filter AST into the filter types of Qdrant's two Python APIs.

Both APIs share Qdrant's filter model (`must` / `should` / `must_not`, field conditions with `match` or
`range`), so one walk builds either, given the API's constructors. Semantics, the same on both back-ends:

- `eq` on a string, integer or bool is an exact match; on a float it is the range `[v, v]` (Qdrant matches
  floats only by range). On an array field it matches when any element equals the value.
- `ne` and `nin` are `must_not` of `eq` / `in`: a point that lacks the field matches them.
- `and` is `must`, `or` is `should` (at least one), `not` is `must_not`. Nested filters stay nested, so a
  tenant scope ANDed in front of a query's own filter is never widened by an `or` inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ragcli.retrieval.filters import And, Condition, Filter, Or
from ragcli.types import Scalar


@dataclass(frozen=True)
class _Dialect:
    filter: Callable[..., Any]
    field: Callable[..., Any]
    match_value: Callable[[str | int | bool], Any]
    match_any: Callable[[list[Any]], Any]
    range: Callable[..., Any]


def _eq(d: _Dialect, key: str, value: Scalar) -> Any:
    if isinstance(value, float):
        return d.field(key=key, range=d.range(gte=value, lte=value))
    return d.field(key=key, match=d.match_value(value))


def _any_of(d: _Dialect, key: str, values: Sequence[Scalar]) -> Any:
    plain = [v for v in values if isinstance(v, str | int) and not isinstance(v, bool)]
    same_kind = all(isinstance(v, str) for v in plain) or all(isinstance(v, int) for v in plain)
    if len(plain) == len(values) and same_kind:
        return d.field(key=key, match=d.match_any(list(plain)))
    # MatchAny takes only strings or only integers: floats and bools become an OR of exact matches
    return d.filter(should=[_eq(d, key, v) for v in values])


def _condition(d: _Dialect, c: Condition) -> Any:
    values: tuple[Scalar, ...] = c.value if isinstance(c.value, tuple) else (c.value,)
    first = values[0] if values else ""
    if c.op == "eq":
        return _eq(d, c.field, first)
    if c.op == "ne":
        return d.filter(must_not=[_eq(d, c.field, first)])
    if c.op == "in":
        return _any_of(d, c.field, values)
    if c.op == "nin":
        return d.filter(must_not=[_any_of(d, c.field, values)])
    if isinstance(first, bool) or not isinstance(first, int | float):
        raise ValueError(f"range operator {c.op!r} on {c.field!r} needs a number, got {first!r}")
    return d.field(key=c.field, range=d.range(**{c.op: float(first)}))


def _translate(d: _Dialect, f: Filter) -> Any:
    if isinstance(f, Condition):
        return d.filter(must=[_condition(d, f)])
    if isinstance(f, And):
        return d.filter(must=[_translate(d, item) for item in f.items])
    if isinstance(f, Or):
        return d.filter(should=[_translate(d, item) for item in f.items])
    return d.filter(must_not=[_translate(d, f.item)])


def to_edge_filter(f: Filter | None) -> Any:
    """The `qdrant_edge.Filter` for a filter AST, or None."""
    if f is None:
        return None
    import numpy as np
    import qdrant_edge as q

    def match_value(v: str | int | bool) -> Any:
        # qdrant-edge-py 0.9 reads a Python bool as the integer 1/0 and then matches no bool payload;
        # numpy's bool is not an int subclass, so it arrives as a bool
        value: Any = np.bool_(v) if isinstance(v, bool) else v
        return q.MatchValue(value)

    d = _Dialect(
        filter=q.Filter,
        field=q.FieldCondition,
        match_value=match_value,
        match_any=q.MatchAny,
        range=q.RangeFloat,
    )
    return _translate(d, f)


def to_client_filter(f: Filter | None) -> Any:
    """The `qdrant_client.models.Filter` for a filter AST, or None."""
    if f is None:
        return None
    from qdrant_client import models as m

    d = _Dialect(
        filter=m.Filter,
        field=m.FieldCondition,
        match_value=lambda v: m.MatchValue(value=v),
        match_any=lambda vs: m.MatchAny(any=vs),
        range=m.Range,
    )
    return _translate(d, f)
