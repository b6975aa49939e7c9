"""Build a `Gateway` from serve settings: the pipelines named by `model`, one shared state, the limits.

Settings travel as JSON in the `RAGCLI_SERVE_SETTINGS` environment variable so that each uvicorn worker process
(`--workers N`) builds the same gateway through `app_from_env` (uvicorn's `factory=True`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragcli.config import PipelineConfig, load_config, preset_names
from ragcli.errors import ConfigError
from ragcli.serve.gateway import Gateway, Limits

log = logging.getLogger(__name__)

SETTINGS_ENV = "RAGCLI_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    configs: list[str] = field(default_factory=lambda: ["local"])
    """Presets or YAML files; each is served under its name (the preset's, or the config's `name`, or the file
    stem). The first one's state (ledger, budgets, keys) is the gateway's."""
    require_key: bool = True
    limits: Limits = field(default_factory=Limits)
    warm: bool = True
    """Load each pipeline's models at start-up, so the first request does not pay for it."""
    local_token: str = ""
    """The token of `POST /v1/ragcli/query` (the CLI's warm path, see `local_query.py`); empty: no such route."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        data = json.loads(text)
        return cls(
            configs=list(data["configs"]),
            require_key=bool(data["require_key"]),
            limits=Limits(**data["limits"]),
            warm=bool(data.get("warm", True)),
            local_token=str(data.get("local_token", "")),
        )


def pipeline_name(ref: str, cfg: PipelineConfig) -> str:
    """The `model` name a config is served under."""
    if ref in preset_names() and not Path(ref).exists():
        return ref
    return cfg.name if cfg.name and cfg.name != "custom" else Path(ref).stem


def embedded_store(cfg: PipelineConfig) -> bool:
    """Whether the config's store lives in this process (one process per folder), not on a server."""
    store = cfg.store
    return store.type == "qdrant_edge" or (store.type == "qdrant" and not store.url)


def load_configs(refs: list[str]) -> dict[str, PipelineConfig]:
    from ragcli.resources import offline_env

    offline_env()
    configs: dict[str, PipelineConfig] = {}
    for ref in refs:
        cfg = load_config(ref)
        name = pipeline_name(ref, cfg)
        if name in configs:
            raise ConfigError(f"two configs are served as {name!r}; give each a distinct `name:`")
        configs[name] = cfg
    if not configs:
        raise ConfigError("no pipeline to serve; pass --config NAME_OR_FILE (e.g. -c local)")
    return configs


def build_gateway(settings: ServeSettings, **stage_overrides: Any) -> Gateway:
    """The gateway of the settings; `stage_overrides` (tests) are given to every pipeline's `Stages`."""
    from ragcli.pipelines.stages import Stages
    from ragcli.state.build import open_state

    configs = load_configs(settings.configs)
    state = open_state(next(iter(configs.values())))
    pipelines = {
        name: Stages.from_config(cfg, ledger=state.ledger, budget_store=state.budgets, **stage_overrides)
        for name, cfg in configs.items()
    }
    if settings.warm:
        for name, stages in pipelines.items():
            log.info("loading the models of pipeline %s", name)
            stages.embedder.embed_query("warm-up")
            stages.store.count()  # open the store once, before concurrent requests race to open it
            _ = stages.llm
    return Gateway(pipelines, state, settings.limits, settings.require_key)


def app_from_env() -> Any:
    """The ASGI app of the settings in `RAGCLI_SERVE_SETTINGS` (what each uvicorn worker calls)."""
    from ragcli.serve.app import create_app
    from ragcli.serve.discovery import config_id
    from ragcli.serve.local_query import add_local_query_route

    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise ConfigError(f"{SETTINGS_ENV} is not set; start the gateway with `ragcli serve`")
    settings = ServeSettings.from_json(text)
    gateway = build_gateway(settings)
    app = create_app(gateway)
    if settings.local_token:
        ids = {name: config_id(stages.config) for name, stages in gateway.pipelines.items()}
        add_local_query_route(app, gateway, settings.local_token, ids)
    return app
