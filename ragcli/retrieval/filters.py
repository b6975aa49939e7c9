"""Metadata filters: one small AST that the CLI expression, YAML and Python all produce.

The AST is what stores translate into their own filter types; it is never `eval`'d.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ragcli.types import Scalar

Op = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "nin"]


@dataclass(frozen=True)
class Condition:
    """`field op value`; for `in`/`nin` the value is a tuple."""

    field: str
    op: Op
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Condition | And | Or | Not


def all_of(*filters: Filter | None) -> Filter | None:
    """Combine filters with AND, skipping None. A tenant scope AND a query filter can only narrow."""
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return And(present)


def fields_of(f: Filter) -> set[str]:
    """Every payload field a filter reads."""
    if isinstance(f, Condition):
        return {f.field}
    if isinstance(f, Not):
        return fields_of(f.item)
    out: set[str] = set()
    for item in f.items:
        out |= fields_of(item)
    return out
