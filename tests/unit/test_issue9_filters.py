"""Issue 9, item 9: filters and names that crashed or slipped through now fail early with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import EXIT_USAGE, app
from ragcli.config import parse_config
from ragcli.errors import ConfigError, InputError
from ragcli.ingest.file_checks import check_meta_values
from ragcli.retrieval.filter_parser import MAX_DEPTH, parse_where
from ragcli.retrieval.filters import Condition, Filter, Not

FIELDS = {"year": "integer", "score": "float", "type": "keyword"}
runner = CliRunner()


def _config(tmp_path: Path, **extra: object) -> str:
    f = tmp_path / "c.yaml"
    data = {"embedder": {"type": "hash"}, "llm": {"type": "scripted"}, "filterable": {"year": "integer"}}
    f.write_text(yaml.safe_dump({**data, **extra}))
    return str(f)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("year = 99999999999999999999999", "64-bit range"),
        ("year >= -99999999999999999999999", "64-bit range"),
        ("year = 1e30", "64-bit range"),
        ("score >= 1e999", "not a finite"),
        ("score = " + "9" * 400, "not a finite"),
        ("year = " + "9" * 5000, "too long"),
    ],
)
def test_huge_numbers_are_input_errors(expr: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_where(expr, FIELDS)


def test_int64_bounds_are_kept() -> None:
    assert parse_where(f"year = {2**63 - 1}", FIELDS) == Condition("year", "eq", 2**63 - 1)
    assert parse_where(f"year = {-(2**63)}", FIELDS) == Condition("year", "eq", -(2**63))


def test_huge_numbers_in_the_mapping_form() -> None:
    with pytest.raises(InputError, match="64-bit range"):
        parse_where({"year": {"gte": 10**30}}, FIELDS)


@pytest.mark.parametrize(
    "expr",
    [
        "(" * 2000 + "year = 1" + ")" * 2000,
        "not " * 2000 + "year = 1",
        "(" * 2000,
    ],
)
def test_deep_nesting_is_an_input_error_not_a_recursion_error(expr: str) -> None:
    with pytest.raises(InputError, match=f"more than {MAX_DEPTH} levels"):
        parse_where(expr, FIELDS)


def test_moderate_nesting_still_parses() -> None:
    assert parse_where("(" * 20 + "year = 1" + ")" * 20, FIELDS) == Condition("year", "eq", 1)


def test_deep_mapping_and_ast_forms() -> None:
    mapping: dict[str, object] = {"year": 1}
    for _ in range(2000):
        mapping = {"not": mapping}
    with pytest.raises(InputError, match="levels"):
        parse_where(mapping, FIELDS)
    ast: Filter = Condition("year", "eq", 1)
    for _ in range(2000):
        ast = Not(ast)
    with pytest.raises(InputError, match="levels"):
        parse_where(ast, FIELDS)


def test_cli_where_with_huge_integer_is_one_line_exit_64(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["query", "q", "-c", _config(tmp_path), "--where", "year = 99999999999999999999999"]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "64-bit range" in result.output and "Traceback" not in result.output


def test_cli_where_with_deep_parentheses(tmp_path: Path) -> None:
    where = "(" * 2000 + "year = 1" + ")" * 2000
    result = runner.invoke(app, ["query", "q", "-c", _config(tmp_path), "--where", where])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "levels" in result.output and "RecursionError" not in result.output


@pytest.mark.parametrize(
    ("retrieval", "fragment"),
    [
        ({"where": "year = = 3"}, "retrieval.where"),
        ({"where": "team = 'x'"}, "retrieval.where: unknown filter field 'team'"),
        ({"tenant": "team = 'a'"}, "retrieval.tenant: unknown filter field 'team'"),
        ({"tenant": {"year": {"gte": "abc"}}}, "retrieval.tenant"),
    ],
)
def test_config_validate_checks_where_and_tenant(
    tmp_path: Path, retrieval: dict[str, object], fragment: str
) -> None:
    result = runner.invoke(app, ["config", "validate", _config(tmp_path, retrieval=retrieval)])
    assert result.exit_code == EXIT_USAGE, result.output
    assert fragment in result.output


def test_config_with_good_where_and_tenant_is_valid(tmp_path: Path) -> None:
    cfg = _config(tmp_path, retrieval={"where": "year >= 2020", "tenant": {"year": {"lt": 2030}}})
    result = runner.invoke(app, ["config", "validate", cfg])
    assert result.exit_code == 0, result.output


def test_parse_config_lists_both_filter_problems() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"retrieval": {"where": "a = 1", "tenant": "b = 2"}})
    assert len(info.value.problems) == 2


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "../x", "a/b"])
def test_path_escaping_collection_names_are_rejected(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("some text to index")
    cfg = _config(tmp_path, home=str(home))
    result = runner.invoke(app, ["ingest", str(docs), "-c", cfg, "--collection", name])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "collection" in result.output
    assert not (home / "qdrant" / "edge_config.json").exists()
    assert not (home / "edge_config.json").exists()


def test_meta_huge_integer_is_refused(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("some text to index")
    result = runner.invoke(
        app, ["ingest", str(docs), "-c", _config(tmp_path), "--meta", "year=99999999999999999999"]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "--meta year=99999999999999999999" in result.output and "64-bit" in result.output


def test_check_meta_values() -> None:
    check_meta_values({"year": 2**63 - 1, "x": 1.5, "ok": True, "tags": [1, 2]})
    with pytest.raises(InputError, match="64-bit"):
        check_meta_values({"ids": [1, 10**20]})
    with pytest.raises(InputError, match="finite"):
        check_meta_values({"x": float("nan")})
