"""Optional dependencies and secrets, each failing one way with a message that says why and what to do.

- `require(module, extra=..., purpose=...)`: import an optional backend. A module that is not installed is
  `ResourceMissing` naming the extra to install; a module that is installed but fails to import (a broken or
  mismatched dependency, e.g. a newer transformers than FlagEmbedding supports) is `ResourceMissing` quoting the
  real error, never a misleading "not installed".
- `api_key(env_var, ...)`: read an API key from the environment variable a config names. A missing one is a
  `ConfigError` everywhere (LLMs, embedders, stores): the config points at a variable that is not set.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from ragcli.errors import ConfigError, ResourceMissing


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import `module` for `purpose` (e.g. "reranker type 'flag'"), or raise `ResourceMissing` saying why."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".", 1)[0]
        if exc.name is not None and exc.name.split(".", 1)[0] == top:
            raise ResourceMissing(
                f"{purpose} needs the {top!r} package, which is not installed; "
                f"run `pip install 'ragcli[{extra}]'`"
            ) from exc
        raise _broken(module, purpose, exc) from exc
    except Exception as exc:  # an installed package whose own imports fail
        raise _broken(module, purpose, exc) from exc


def _broken(module: str, purpose: str, exc: BaseException) -> ResourceMissing:
    return ResourceMissing(
        f"{purpose} needs {module!r}, which is installed but fails to import: {type(exc).__name__}: {exc}; "
        "this is usually a dependency at a version it does not support: reinstall at the locked versions "
        "(`bash scripts/setup.sh`, which installs from requirements.lock)"
    )


def api_key(env_var: str, *, what: str, config_key: str) -> str:
    """The API key in `env_var`, for `what` (e.g. "gpt-4o-mini at api.openai.com").

    Raises:
        ConfigError: the variable is unset or empty; names it and the config key that chose it.
    """
    key = os.environ.get(env_var, "").strip()
    if not key:
        raise ConfigError(
            f"the environment variable {env_var} is not set; export it with your API key for {what} "
            f"(or set {config_key} to the variable that holds it)"
        )
    return key
