"""The filter parser: three forms, one AST, and an error message for every way to get it wrong."""

from __future__ import annotations

from typing import Any

import pytest

from ragcli.errors import InputError
from ragcli.retrieval.filter_parser import describe, parse_where
from ragcli.retrieval.filters import And, Condition, Not, Or

FIELDS = {"type": "keyword", "year": "integer", "tag": "keyword", "score": "float", "draft": "bool"}


def test_the_three_forms_mean_the_same() -> None:
    expr = parse_where("type = 'pdf' and year >= 2020 and tag in ('a','b')", FIELDS)
    mapping = parse_where({"type": "pdf", "year": {"gte": 2020}, "tag": ["a", "b"]}, FIELDS)
    python = parse_where(
        And(
            (
                Condition("type", "eq", "pdf"),
                Condition("year", "gte", 2020),
                Condition("tag", "in", ("a", "b")),
            )
        ),
        FIELDS,
    )
    assert expr == mapping == python
    assert describe(expr) == "type = 'pdf' and year >= 2020 and tag in ('a', 'b')"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("type = 'pdf'", Condition("type", "eq", "pdf")),
        ('type == "pdf"', Condition("type", "eq", "pdf")),
        ("type != 'pdf'", Condition("type", "ne", "pdf")),
        ("type <> 'pdf'", Condition("type", "ne", "pdf")),
        ("year < 2020", Condition("year", "lt", 2020)),
        ("year <= 2020", Condition("year", "lte", 2020)),
        ("year > -5", Condition("year", "gt", -5)),
        ("score >= 1e-1", Condition("score", "gte", 0.1)),
        ("score = 1", Condition("score", "eq", 1.0)),
        ("year = 2020.0", Condition("year", "eq", 2020)),
        ("draft = TRUE", Condition("draft", "eq", True)),
        ("draft = false", Condition("draft", "eq", False)),
        ("tag not in ('x', \"y\")", Condition("tag", "nin", ("x", "y"))),
        ("type = 'O''Brien'", Condition("type", "eq", "O'Brien")),
        ("type = 'a b, (c)'", Condition("type", "eq", "a b, (c)")),
        (
            "type = 'a' or type = 'b' and year > 1",
            Or(
                (
                    Condition("type", "eq", "a"),
                    And((Condition("type", "eq", "b"), Condition("year", "gt", 1))),
                )
            ),
        ),
        (
            "(type = 'a' or type = 'b') and not draft = true",
            And(
                (
                    Or((Condition("type", "eq", "a"), Condition("type", "eq", "b"))),
                    Not(Condition("draft", "eq", True)),
                )
            ),
        ),
        ("NOT not year = 1", Not(Not(Condition("year", "eq", 1)))),
    ],
)
def test_expressions(expr: str, expected: Any) -> None:
    assert parse_where(expr, FIELDS) == expected


def test_no_filter() -> None:
    assert parse_where(None, FIELDS) is None
    assert parse_where("   ", FIELDS) is None


def test_mapping_form() -> None:
    f = parse_where(
        {
            "or": [{"type": "pdf"}, {"type": "md"}],
            "not": {"draft": True},
            "and": [{"year": {"gte": 2000, "lt": 2030}}],
            "tag": {"nin": ["x"]},
        },
        FIELDS,
    )
    assert describe(f) == (
        "(type = 'pdf' or type = 'md') and (not draft = true) and (year >= 2000 and year < 2030) "
        "and tag not in ('x')"
    )


ERRORS = [
    # syntax
    ("type = pdf", "expected a value after '=' (strings need quotes: 'pdf'), found 'pdf' at column 8"),
    ("type = ", "expected a value after '=', found the end of the filter at column 8"),
    ("type = 'pdf", "unterminated string: add the closing ' at column 8"),
    ("type ~ 'a'", "unexpected character '~' at column 6"),
    ("type 'a'", "expected an operator (=, !=, <, <=, >, >=, in, not in) after 'type', found \"'a'\""),
    ("= 'a'", "expected a field name, found '=' at column 1"),
    ("(type = 'a'", "expected ')' to close the parenthesis, found the end of the filter"),
    ("type = 'a')", "expected 'and', 'or' or the end of the filter, found ')' at column 11"),
    ("type = 'a' year = 1", "expected 'and', 'or' or the end of the filter, found 'year'"),
    ("tag in 'a'", "expected '(' after 'in', e.g. tag in ('a', 'b'), found \"'a'\""),
    ("tag in ()", "expected at least one value inside 'in' (...)"),
    ("tag in ('a' 'b')", "expected ',' or ')' in the list of values"),
    ("tag not 'a'", "expected 'in' after 'tag not'"),
    ("type = 'a' and", "expected a field name, found the end of the filter"),
    # fields and types
    (
        "yeer = 1",
        "unknown filter field 'yeer'; filterable fields are: draft (bool), score (float), tag (keyword), "
        "type (keyword), year (integer) (declare others under `filterable:` in the config)",
    ),
    ("year >= 'abc'", "filter field 'year' is integer, but got 'abc' (a string); write e.g. year = 2020"),
    ("year = 20.5", "filter field 'year' is integer, but got 20.5 (a number); write e.g. year = 2020"),
    ("year = true", "filter field 'year' is integer, but got True (a boolean)"),
    ("type = 3", "filter field 'type' is keyword, but got 3 (an integer); write e.g. type = 'text'"),
    ("score = 'x'", "filter field 'score' is float, but got 'x' (a string); write e.g. score >= 0.5"),
    ("draft = 1", "filter field 'draft' is bool, but got 1 (an integer); write e.g. draft = true"),
    ("type >= 'a'", "operator '>=' needs a number, but field 'type' is keyword; use =, !=, in or not in"),
    ("draft < true", "operator '<' needs a number, but field 'draft' is bool"),
    ("tag in ('a', 2)", "filter field 'tag' is keyword, but got 2 (an integer)"),
    # the mapping form
    ({}, "filter where: an empty mapping; give at least one `field: value`"),
    (
        {"type": {"like": "a"}},
        "filter where.type: unknown operator 'like'; valid operators: eq, ne, lt, lte, gt",
    ),
    ({"type": {}}, "filter where.type: an empty mapping; use e.g. {gte: 2020}"),
    ({"or": {"type": "a"}}, "filter where.or: expected a non-empty list of mappings"),
    ({"and": []}, "filter where.and: expected a non-empty list of mappings"),
    ({"not": ["a"]}, "filter where.not: expected a mapping, e.g. not: {draft: true}"),
    ({"tag": {"in": "a"}}, "filter where.tag.in: 'in' needs a non-empty list of values"),
    ({"tag": {"in": [["a"]]}}, "filter where.tag.in: expected a string, number or true/false"),
    ({"type": None}, "filter where.type: expected a string, number or true/false, got None"),
    ({"year": "2020"}, "filter field 'year' is integer, but got '2020' (a string)"),
    # the Python form
    (Condition("type", "eq", ("a", "b")), "filter field 'type': operator 'eq' takes one value, got a list"),
    (Condition("tag", "in", ()), "filter field 'tag': 'in' needs at least one value"),
    (42, "a filter must be an expression string, a mapping or a filter object, got int"),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS)
def test_every_error_says_what_and_how(expr: Any, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_where(expr, FIELDS)
    assert message in str(info.value)


def test_no_declared_fields() -> None:
    with pytest.raises(
        InputError, match=r"the config declares no filterable fields; add e.g. `filterable: \{type"
    ):
        parse_where("type = 'a'", {})


def test_a_single_value_in_the_python_form_becomes_a_list() -> None:
    assert parse_where(Condition("tag", "in", "a"), FIELDS) == Condition("tag", "in", ("a",))


def test_never_evaluates_code() -> None:
    for hostile in ("__import__('os').system('true')", "type = 'a'; import os", "type = 'a' -- or 1=1"):
        with pytest.raises(InputError):
            parse_where(hostile, FIELDS)
