"""`ragcli serve` and `ragcli keys` through typer's CliRunner: exit codes, messages, keys shown once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ragcli.cli import app
from tests.unit.postgres_support import pg_admin_dsn, pg_dsn  # noqa: F401

runner = CliRunner()


def cfg_file(tmp_path: Path, **over: object) -> str:
    path = tmp_path / "gw.yaml"
    data = {
        "name": "gw",
        "home": str(tmp_path / "home"),
        "embedder": {"type": "hash"},
        "llm": {"type": "scripted"},
    }
    path.write_text(yaml.safe_dump({**data, **over}), encoding="utf-8")
    return str(path)


def test_keys_add_list_revoke(tmp_path: Path) -> None:
    cfg = cfg_file(tmp_path)
    r = runner.invoke(
        app, ["keys", "add", "--tenant", "acme", "--usd-per-day", "2.5", "--rpm", "30", "-c", cfg, "--json"]
    )
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    key, kid = made["key"], made["key_id"]
    assert key.startswith(f"rk-{kid}.") and made["scope"] == {"tenant": "acme"}
    r = runner.invoke(app, ["keys", "add", "--tenant", "globex", "--where", "team = 'x'", "-c", cfg])
    assert r.exit_code == 0 and "shown only this once" in r.output
    r = runner.invoke(app, ["keys", "list", "-c", cfg, "--json"])
    listed = json.loads(r.output)
    assert {k["tenant"] for k in listed} == {"acme", "globex"}
    assert key.split(".")[1] not in r.output and "digest" not in r.output and "salt" not in r.output
    r = runner.invoke(app, ["keys", "revoke", key, "-c", cfg])
    assert r.exit_code == 0 and kid in r.output
    r = runner.invoke(app, ["keys", "list", "-c", cfg, "--json"])
    assert [k["revoked"] for k in json.loads(r.output) if k["key_id"] == kid] == [True]
    assert runner.invoke(app, ["keys", "list", "-c", cfg]).exit_code == 0
    r = runner.invoke(app, ["keys", "revoke", "000000000000", "-c", cfg])
    assert r.exit_code == 64 and "no key" in r.output


def test_keys_add_refuses_where_with_unscoped(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["keys", "add", "--tenant", "a", "--where", "x = 1", "--unscoped", "-c", cfg_file(tmp_path)]
    )
    assert r.exit_code == 64


def test_keys_in_postgres(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("RAGCLI_PG_DSN", pg_dsn)
    cfg = cfg_file(tmp_path, state={"dsn_env": "RAGCLI_PG_DSN"})
    r = runner.invoke(app, ["keys", "add", "--tenant", "acme", "-c", cfg, "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["keys", "list", "-c", cfg, "--json"])
    assert json.loads(r.output)[0]["tenant"] == "acme"
    monkeypatch.delenv("RAGCLI_PG_DSN")
    r = runner.invoke(app, ["keys", "list", "-c", cfg])
    assert r.exit_code == 64 and "RAGCLI_PG_DSN" in r.output


def test_serve_help_says_how_to_proxy_and_about_processes() -> None:
    r = runner.invoke(app, ["serve", "--help"], terminal_width=200)
    assert r.exit_code == 0
    for words in ("reverse proxy", "proxy_buffering off", "--forwarded-allow-ips", "ONE process"):
        assert words in r.output


def test_serve_refuses_workers_over_the_embedded_store(tmp_path: Path) -> None:
    r = runner.invoke(app, ["serve", "--workers", "2", "-c", cfg_file(tmp_path)])
    assert r.exit_code == 64 and "one process per folder" in r.output


def test_serve_without_keys_only_on_loopback(tmp_path: Path) -> None:
    r = runner.invoke(app, ["serve", "--no-auth", "--host", "0.0.0.0", "-c", cfg_file(tmp_path)])
    assert r.exit_code == 64 and "loopback" in r.output
