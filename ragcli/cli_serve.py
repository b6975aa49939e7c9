"""`ragcli serve` (the OpenAI-compatible gateway) and `ragcli keys add|list|revoke` (its API keys)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from ragcli.cli_support import EXIT_USAGE, ConfigOpt, JsonOpt, err, errors, load, out, print_json

SERVE_HELP = """Serve pipelines over HTTP with the OpenAI API: POST /v1/chat/completions (streaming and not),
GET /v1/models, POST /v1/embeddings. `model` names a pipeline (each --config is served under its name); the last
user message is the question, earlier ones the history. Every request needs `Authorization: Bearer <key>` (make
keys with `ragcli keys add`); the key's tenant scope is ANDed with every query.

\b
Processes: with the embedded store (qdrant_edge, or qdrant with a path) the gateway runs ONE process, because the
embedded engine allows one process per folder; --workers above 1 needs a Qdrant server (store.type: qdrant, url:)
and, for exact shared budgets, PostgreSQL state (state.dsn_env). Rate limits are per process.

\b
The CLI's warm path: while the gateway runs, `ragcli query` on this machine with one of these configs sends its
query here (POST /v1/ragcli/query, with a token only you can read) instead of loading models and opening the
store itself. `--no-advertise` turns that off; `ragcli query --no-server` skips it for one query.

\b
Behind a reverse proxy (TLS, public address): bind to loopback and proxy to it, e.g. nginx:
    location /v1/ {
        proxy_pass http://127.0.0.1:8000;
        proxy_http_version 1.1;
        proxy_buffering off;              # stream answers (server-sent events) as they come
        proxy_read_timeout 300s;          # a slow model must not be cut off
        client_max_body_size 1m;          # match --max-body-bytes
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
and start `ragcli serve --host 127.0.0.1 --forwarded-allow-ips 127.0.0.1` (under a path prefix: --root-path /rag).
Keep the Authorization header (never log it at the proxy); pass the X-Ragcli-* response headers through."""

serve_app = typer.Typer(help="Serve pipelines as an OpenAI-compatible HTTP gateway.")
keys_app = typer.Typer(
    help="API keys of the gateway: add, list, revoke (stored hashed).", no_args_is_help=True
)


@serve_app.command(
    "serve",
    help=SERVE_HELP,
    short_help="Serve pipelines as an OpenAI-compatible HTTP gateway (keys, tenants, budgets).",
)
def serve(
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config", "-c", help="A preset or YAML file to serve (repeat for several; default: local)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback by default: put a proxy in front).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Processes (only with a Qdrant server URL; see above).")] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without API keys (loopback only; for local development).")
    ] = False,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted (413 above).")
    ] = 1_000_000,
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests per minute for keys that set none (429 above; per process).")
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None, typer.Option(help="Proxies whose X-Forwarded-* headers are trusted (e.g. 127.0.0.1).")
    ] = None,
    root_path: Annotated[str, typer.Option(help="Path prefix the proxy serves the gateway under.")] = "",
    advertise: Annotated[
        bool,
        typer.Option(
            help="Let `ragcli query` on this machine send its queries here (writes <home>/servers/<pid>.json, "
            "readable by you only, removed on exit)."
        ),
    ] = True,
) -> None:
    import secrets

    from ragcli.serve.build import SETTINGS_ENV, ServeSettings, embedded_store, load_configs
    from ragcli.serve.discovery import ServerInfo, advertised, config_id, connect_host
    from ragcli.serve.gateway import Limits

    with errors():
        refs = config or ["local"]
        configs = load_configs(refs)
        embedded = [name for name, cfg in configs.items() if embedded_store(cfg)]
        if workers < 1:
            err.print(f"error: --workers must be at least 1, got {workers}")
            raise typer.Exit(EXIT_USAGE)
        if workers > 1 and embedded:
            err.print(
                f"error: --workers {workers} needs a Qdrant server, but pipeline(s) {', '.join(embedded)} use the "
                "embedded store, which allows one process per folder; run with --workers 1, or set store.type: "
                "qdrant with url: in the config"
            )
            raise typer.Exit(EXIT_USAGE)
        if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"error: --no-auth serves without keys and is allowed on loopback only, not on {host}")
            raise typer.Exit(EXIT_USAGE)
        if not no_auth:
            _warn_unusable_scopes(configs)
        import uvicorn

        settings = ServeSettings(
            configs=refs,
            require_key=not no_auth,
            limits=Limits(max_body_bytes=max_body_bytes, default_requests_per_minute=rate_limit),
            local_token=secrets.token_urlsafe(32) if advertise else "",
        )
        os.environ[SETTINGS_ENV] = settings.to_json()
        why = " (embedded store: one process per folder)" if embedded else ""
        err.print(
            f"ragcli gateway: pipelines {', '.join(configs)} on http://{host}:{port}/v1 with {workers} "
            f"process(es){why}; keys {'off' if no_auth else 'required'}"
        )
        ids = {name: config_id(cfg) for name, cfg in configs.items()}
        info = ServerInfo(os.getpid(), connect_host(host), port, settings.local_token, ids)
        # once the server answers, `ragcli query` with these configs comes here; the files go when it stops
        with advertised(info if advertise and port else None, [cfg.home_dir() for cfg in configs.values()]):
            uvicorn.run(
                "ragcli.serve.build:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                forwarded_allow_ips=forwarded_allow_ips,
                root_path=root_path,
                log_level="info",
            )


def _warn_unusable_scopes(configs: dict[str, Any]) -> None:
    """Name the keys whose tenant scope a served pipeline cannot filter on (their requests would fail there)."""
    from ragcli.serve.gateway import scope_problems
    from ragcli.state.build import open_state

    state = open_state(next(iter(configs.values())))  # the first pipeline's state holds the gateway's keys
    try:
        problems = scope_problems(state.keys.list(), configs)
    finally:
        state.close()
    for line in problems:
        err.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)


@keys_app.command("add")
def keys_add(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    where: Annotated[
        str | None,
        typer.Option(help="The key's scope filter (default: tenant = '<tenant>'); ANDed with every query."),
    ] = None,
    tenant_field: Annotated[str, typer.Option(help="Payload field of the default scope.")] = "tenant",
    unscoped: Annotated[
        bool,
        typer.Option("--unscoped", help="No scope at all: the key reads every tenant (admin keys only)."),
    ] = False,
    name: Annotated[str, typer.Option(help="A label for people.")] = "",
    usd_per_day: Annotated[float | None, typer.Option(help="Dollars the key may spend per UTC day.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    pipeline: Annotated[
        list[str] | None, typer.Option(help="Pipelines the key may use (repeat; default: all).")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a key; its full value is printed once and cannot be shown again (only a salted hash is stored)."""
    from ragcli.serve.key_store import issue_key
    from ragcli.state.build import open_state

    with errors():
        if unscoped and where:
            err.print("error: give --where or --unscoped, not both")
            raise typer.Exit(EXIT_USAGE)
        scope: dict[str, object] | str | None = (
            None if unscoped else (where if where else {tenant_field: tenant})
        )
        record, full = issue_key(
            tenant,
            scope,
            name=name,
            usd_per_day=usd_per_day,
            requests_per_minute=rpm,  # type: ignore[arg-type]
            pipelines=tuple(pipeline or ()),
        )
        state = open_state(load(config))
        try:
            state.keys.add(record)
        finally:
            state.close()
        if as_json:
            print_json({**record.public(), "key": full})
        else:
            out.print(
                f"key {record.key_id} for tenant {tenant!r} (scope: {scope if scope is not None else 'none'})"
            )
            out.print(full, highlight=False, soft_wrap=True)
            out.print("store it now: it is shown only this once.")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List keys (ids, tenants, scopes, limits; never secrets)."""
    from ragcli.state.build import open_state

    with errors():
        state = open_state(load(config))
        try:
            records = state.keys.list()
        finally:
            state.close()
        if as_json:
            print_json([r.public() for r in records])
            return
        table = Table(title=f"API keys ({len(records)})")
        for col in ("key id", "name", "tenant", "scope", "$/day", "rpm", "pipelines", "created", "status"):
            table.add_column(col, overflow="fold")
        for r in records:
            table.add_row(
                r.key_id,
                r.name,
                r.tenant,
                str(r.scope),
                "" if r.usd_per_day is None else f"{r.usd_per_day:g}",
                "" if r.requests_per_minute is None else str(r.requests_per_minute),
                ",".join(r.pipelines) or "all",
                r.created,
                "revoked" if r.revoked else "active",
            )
        out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `ragcli keys list`), or the full key.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from ragcli.serve.key_store import split_key
    from ragcli.state.build import open_state

    with errors():
        parts = split_key(key_id)
        kid = parts[0] if parts else key_id.strip().removeprefix("rk-")
        state = open_state(load(config))
        try:
            found = state.keys.revoke(kid)
        finally:
            state.close()
        if not found:
            err.print(f"error: no key with id {kid!r}; see `ragcli keys list`")
            raise typer.Exit(EXIT_USAGE)
        out.print(f"revoked key {kid}")


serve_app.add_typer(keys_app, name="keys")
