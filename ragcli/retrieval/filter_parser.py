"""Metadata filters from a CLI expression, a YAML mapping or Python objects: one AST, never `eval`'d.

Three forms, one meaning. Each is checked against the config's `filterable:` fields and their types.

1. Expression (CLI `--where`, YAML string)::

       type = 'pdf' and year >= 2020 and tag in ('a', 'b')
       (lang = 'en' or lang = 'de') and not draft = true and status not in ('old')

   Operators: `=` (or `==`), `!=` (or `<>`), `<`, `<=`, `>`, `>=`, `in (...)`, `not in (...)`; combined with
   `and`, `or`, `not` and parentheses (`not` binds tightest, then `and`, then `or`). Strings are quoted with
   `'` or `"` (a quote inside is doubled: `'O''Brien'`); numbers are bare; booleans are `true` / `false`.
   Keywords are case-insensitive.

2. Mapping (YAML `where:` / `tenant:`, or a Python dict). Keys at one level are ANDed::

       where:
         type: pdf                    # field: value       -> equality
         tag: [a, b]                  # field: [values]    -> in
         year: {gte: 2020, lt: 2025}  # field: {op: value} -> eq ne lt lte gt gte in nin (several are ANDed)
         or: [{lang: en}, {lang: de}] # any of these mappings
         and: [{...}, {...}]          # all of them
         not: {draft: true}           # not (the mapping, ANDed)

3. Python: the AST of `ragcli.retrieval.filters` (`Condition("year", "gte", 2020)`, `And(...)`, ...).

Validation: a field must be declared filterable (the error lists those that are), range operators need an
integer or float field, and each value must fit its field's type (integer fields take whole numbers that fit
in 64 bits, as the store keeps them; float fields take finite numbers, keyword fields take strings, bool fields
take true/false). A filter nests at most `MAX_DEPTH` levels (parentheses and `not`), so a hostile expression
gets an `InputError`, never a `RecursionError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ragcli.errors import InputError
from ragcli.retrieval.filters import And, Condition, Filter, Not, Op, Or
from ragcli.types import Scalar

_OPS: dict[str, Op] = {
    "=": "eq",
    "==": "eq",
    "!=": "ne",
    "<>": "ne",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
}
_MAPPING_OPS: tuple[Op, ...] = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "nin")
_RANGE_OPS = ("lt", "lte", "gt", "gte")
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
MAX_DEPTH = 50
"""How deep a filter may nest (parentheses, `not`, mapping levels); real filters use two or three."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The store keeps integer payloads as signed 64-bit numbers."""
_MAX_NUMBER_CHARS = 400
"""Longer numbers are refused before conversion (Python refuses ints of over 4,300 digits with a ValueError)."""
_SYMBOLS = {
    "eq": "=",
    "ne": "!=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "in": "in",
    "nin": "not in",
}

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![A-Za-z_])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
      | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, ident, keyword, string, op, punct, end
    text: str
    pos: int
    value: Scalar = ""


def parse_where(expr: str | Mapping[str, Any] | Filter | None, fields: Mapping[str, str]) -> Filter | None:
    """Parse and validate a filter in any of the three forms; None (or an empty string) means no filter.

    Args:
        expr: An expression string, a mapping, or a filter AST.
        fields: The declared filterable fields: name -> 'keyword' | 'integer' | 'float' | 'bool'.

    Raises:
        InputError: the filter is malformed, names an undeclared field, or a value does not fit its field.
    """
    if expr is None:
        return None
    if isinstance(expr, str):
        if not expr.strip():
            return None
        ast = _Parser(expr).parse()
    elif isinstance(expr, Condition | And | Or | Not):
        ast = expr
    elif isinstance(expr, Mapping):
        ast = _from_mapping(expr, "where")
    else:
        raise InputError(
            f"a filter must be an expression string, a mapping or a filter object, got {type(expr).__name__}"
        )
    return _validate(ast, fields)


# ---------------------------------------------------------------- the expression form


def _tokenize(expr: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            if expr[pos] in "'\"":
                raise _error(expr, pos, f"unterminated string: add the closing {expr[pos]}")
            raise _error(expr, pos, f"unexpected character {expr[pos]!r}")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "string" and len(text) >= 2:
            quote = text[0]
            out.append(_Tok("string", text, pos, text[1:-1].replace(quote * 2, quote)))
        elif kind == "number":
            if len(text) > _MAX_NUMBER_CHARS:
                raise _error(expr, pos, f"a number of {len(text)} characters is too long for any field")
            number: Scalar = float(text) if any(c in text for c in ".eE") else int(text)
            out.append(_Tok("number", text, pos, number))
        elif kind == "ident" and text.lower() in _KEYWORDS:
            out.append(_Tok("keyword", text.lower(), pos))
        elif kind != "ws":
            out.append(_Tok(kind, text, pos))
        pos = m.end()
    out.append(_Tok("end", "", len(expr)))
    return out


def _error(expr: str, pos: int, message: str) -> InputError:
    return InputError(f"invalid filter {expr!r}: {message} at column {pos + 1}")


class _Parser:
    """Recursive descent: or_expr := and_expr (OR and_expr)*; and_expr := not_expr (AND not_expr)*;
    not_expr := NOT not_expr | '(' or_expr ')' | comparison."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = _tokenize(expr)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def _fail(self, message: str, tok: _Tok | None = None) -> InputError:
        tok = tok or self.tok
        found = "the end of the filter" if tok.kind == "end" else repr(tok.text)
        return _error(self.expr, tok.pos, f"{message}, found {found}")

    def parse(self) -> Filter:
        ast = self._or()
        if not self._is("end"):
            raise self._fail("expected 'and', 'or' or the end of the filter")
        return ast

    def _or(self) -> Filter:
        items = [self._and()]
        while self._is("keyword", "or"):
            self._next()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Filter:
        items = [self._not()]
        while self._is("keyword", "and"):
            self._next()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self) -> Filter:
        if not (self._is("keyword", "not") or self._is("punct", "(")):
            return self._comparison()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(
                self.expr,
                self.tok.pos,
                f"the filter nests more than {MAX_DEPTH} levels of parentheses or 'not'; "
                "write it flatter (e.g. tag in ('a', 'b') instead of nested ors)",
            )
        try:
            if self._next().text == "not":
                return Not(self._not())
            inner = self._or()
            if not self._is("punct", ")"):
                raise self._fail("expected ')' to close the parenthesis")
            self._next()
            return inner
        finally:
            self.depth -= 1

    def _comparison(self) -> Filter:
        if not self._is("ident"):
            raise self._fail("expected a field name")
        name = self._next().text
        if self._is("op"):
            op = _OPS[self._next().text]
            return Condition(name, op, self._value(op))
        if self._is("keyword", "in"):
            self._next()
            return Condition(name, "in", self._list("in"))
        if self._is("keyword", "not"):
            self._next()
            if not self._is("keyword", "in"):
                raise self._fail(f"expected 'in' after '{name} not'")
            self._next()
            return Condition(name, "nin", self._list("not in"))
        raise self._fail(f"expected an operator (=, !=, <, <=, >, >=, in, not in) after {name!r}")

    def _value(self, op: str) -> Scalar:
        tok = self.tok
        if tok.kind in ("string", "number"):
            self._next()
            return tok.value
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            self._next()
            return tok.text == "true"
        symbol = _SYMBOLS.get(op, op)
        if tok.kind == "ident":
            raise self._fail(f"expected a value after {symbol!r} (strings need quotes: '{tok.text}')")
        raise self._fail(f"expected a value after {symbol!r}")

    def _list(self, op: str) -> tuple[Scalar, ...]:
        if not self._is("punct", "("):
            raise self._fail(f"expected '(' after {op!r}, e.g. tag {op} ('a', 'b')")
        self._next()
        if self._is("punct", ")"):
            raise self._fail(f"expected at least one value inside {op!r} (...)")
        values = [self._value(op)]
        while self._is("punct", ","):
            self._next()
            values.append(self._value(op))
        if not self._is("punct", ")"):
            raise self._fail("expected ',' or ')' in the list of values")
        self._next()
        return tuple(values)


# ---------------------------------------------------------------- the mapping form


def _from_mapping(data: Mapping[str, Any], path: str, depth: int = 1) -> Filter:
    if depth > MAX_DEPTH:
        raise InputError(f"filter {path[:80]}...: nests more than {MAX_DEPTH} levels; write it flatter")
    if not data:
        raise InputError(f"filter {path}: an empty mapping; give at least one `field: value`")
    items: list[Filter] = []
    for key, value in data.items():
        where = f"{path}.{key}"
        if key in ("and", "or"):
            if not isinstance(value, list) or not value or not all(isinstance(v, Mapping) for v in value):
                raise InputError(f"filter {where}: expected a non-empty list of mappings, got {value!r}")
            parts = tuple(_from_mapping(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
            if len(parts) == 1:
                items.append(parts[0])
            else:
                items.append(And(parts) if key == "and" else Or(parts))
        elif key == "not":
            if not isinstance(value, Mapping):
                raise InputError(
                    f"filter {where}: expected a mapping, e.g. not: {{draft: true}}, got {value!r}"
                )
            items.append(Not(_from_mapping(value, where, depth + 1)))
        elif isinstance(value, Mapping):
            if not value:
                raise InputError(f"filter {where}: an empty mapping; use e.g. {{gte: 2020}}")
            for op, operand in value.items():
                if op not in _MAPPING_OPS:
                    raise InputError(
                        f"filter {where}: unknown operator {op!r}; valid operators: {', '.join(_MAPPING_OPS)}"
                    )
                items.append(_mapping_condition(str(key), cast(Op, op), operand, f"{where}.{op}"))
        elif isinstance(value, list):
            items.append(_mapping_condition(str(key), "in", value, where))
        else:
            items.append(_mapping_condition(str(key), "eq", value, where))
    return items[0] if len(items) == 1 else And(tuple(items))


def _mapping_condition(name: str, op: Op, operand: Any, where: str) -> Condition:
    if op in ("in", "nin"):
        if not isinstance(operand, list | tuple) or not operand:
            raise InputError(f"filter {where}: {op!r} needs a non-empty list of values, got {operand!r}")
        for v in operand:
            _scalar(v, where)
        return Condition(name, op, tuple(operand))
    return Condition(name, op, _scalar(operand, where))


def _scalar(v: Any, where: str) -> Scalar:
    if isinstance(v, str | int | float | bool):
        return v
    raise InputError(f"filter {where}: expected a string, number or true/false, got {v!r}")


# ---------------------------------------------------------------- validation against the declared fields


def _kind(v: Scalar) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    return "a string"


def _coerce(name: str, ftype: str, v: Scalar) -> Scalar:
    """The value as its field's type, or an InputError saying what fits."""
    if ftype == "keyword" and isinstance(v, str):
        return v
    if ftype == "integer" and not isinstance(v, bool):
        whole = v if isinstance(v, int) else int(v) if isinstance(v, float) and v.is_integer() else None
        if whole is not None:
            if not INT64_MIN <= whole <= INT64_MAX:
                raise InputError(
                    f"filter field {name!r} is integer, but {_short(v)} is outside the 64-bit range the store "
                    f"keeps ({INT64_MIN} to {INT64_MAX}); check the number"
                )
            return whole
    if ftype == "float" and isinstance(v, int | float) and not isinstance(v, bool):
        try:
            number = float(v)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InputError(
                f"filter field {name!r} is float, but {_short(v)} is not a finite 64-bit number; check the number"
            )
        return number
    if ftype == "bool" and isinstance(v, bool):
        return v
    example = {
        "keyword": f"{name} = 'text'",
        "integer": f"{name} = 2020",
        "float": f"{name} >= 0.5",
        "bool": f"{name} = true",
    }.get(ftype, name)
    raise InputError(
        f"filter field {name!r} is {ftype}, but got {_short(v)} ({_kind(v)}); write e.g. {example}"
    )


def _short(v: Scalar) -> str:
    text = repr(v)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _validate(f: Filter, fields: Mapping[str, str], depth: int = 0) -> Filter:
    if depth > MAX_DEPTH:
        raise InputError(f"the filter nests more than {MAX_DEPTH} levels of and/or/not; write it flatter")
    if isinstance(f, And):
        return And(tuple(_validate(i, fields, depth + 1) for i in f.items))
    if isinstance(f, Or):
        return Or(tuple(_validate(i, fields, depth + 1) for i in f.items))
    if isinstance(f, Not):
        return Not(_validate(f.item, fields, depth + 1))
    if f.field not in fields:
        if not fields:
            raise InputError(
                f"filter field {f.field!r} is not filterable: the config declares no filterable fields; "
                f"add e.g. `filterable: {{{f.field}: keyword}}` to the config and re-ingest"
            )
        valid = ", ".join(f"{k} ({v})" for k, v in sorted(fields.items()))
        raise InputError(
            f"unknown filter field {f.field!r}; filterable fields are: {valid} "
            "(declare others under `filterable:` in the config)"
        )
    ftype = fields[f.field]
    if f.op in _RANGE_OPS and ftype not in ("integer", "float"):
        raise InputError(
            f"operator {_SYMBOLS[f.op]!r} needs a number, but field {f.field!r} is {ftype}; "
            "use =, !=, in or not in"
        )
    if isinstance(f.value, tuple):
        if f.op not in ("in", "nin"):
            raise InputError(f"filter field {f.field!r}: operator {f.op!r} takes one value, got a list")
        if not f.value:
            raise InputError(f"filter field {f.field!r}: {_SYMBOLS[f.op]!r} needs at least one value")
        return Condition(f.field, f.op, tuple(_coerce(f.field, ftype, v) for v in f.value))
    if f.op in ("in", "nin"):
        return Condition(f.field, f.op, (_coerce(f.field, ftype, f.value),))
    return Condition(f.field, f.op, _coerce(f.field, ftype, f.value))


def describe(f: Filter | None) -> str:
    """The filter as an expression string (for traces and messages)."""
    if f is None:
        return ""
    if isinstance(f, And):
        return " and ".join(_paren(i) for i in f.items)
    if isinstance(f, Or):
        return " or ".join(_paren(i) for i in f.items)
    if isinstance(f, Not):
        return f"not {_paren(f.item)}"
    if isinstance(f.value, tuple):
        return f"{f.field} {_SYMBOLS[f.op]} ({', '.join(_literal(v) for v in f.value)})"
    return f"{f.field} {_SYMBOLS[f.op]} {_literal(f.value)}"


def _paren(f: Filter) -> str:
    return describe(f) if isinstance(f, Condition) else f"({describe(f)})"


def _literal(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)
