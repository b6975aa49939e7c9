"""How the CLI finds a running `ragcli serve` on the same machine (the warm path), and how serve says it runs.

`ragcli serve` writes one small JSON file per home it serves, `<home>/servers/<pid>.json` (file mode 0600 in a
0700 folder): its process id, where it listens, the pipelines it serves with each one's config id, and a random
token that only the same user can read. `ragcli query` computes its own config's id and sends the query to a
server that serves exactly that config, instead of importing torch and loading models itself. A file is written
only once the server answers, and removed on a clean shutdown; files of dead servers are removed by whoever
finds them. Standard library only: the CLI reads these files before it imports anything heavy. POSIX only (on
other systems the CLI always queries in its own process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragcli.config import PipelineConfig

log = logging.getLogger(__name__)

SERVERS_DIR = "servers"
QUERY_PATH = "/v1/ragcli/query"
"""The route that answers `ragcli query` (see `local_query.py`)."""
_PATH_FIELDS = (("store", "path"), ("cost", "ledger"), ("cache", "db"), ("state", "keys"))
"""Config fields holding file paths: resolved, so a relative path means the same file for both processes."""


def config_id(cfg: PipelineConfig) -> str:
    """A digest of the effective config and the files it writes: equal only for configs that behave the same."""
    data: dict[str, Any] = cfg.model_dump(mode="json")
    data["home"] = str(cfg.home_dir().resolve())
    for section, key in _PATH_FIELDS:
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value != ":memory:":
            data[section][key] = str(Path(value).expanduser().resolve())
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ServerInfo:
    """One advertised server: where it listens and what it serves."""

    pid: int
    host: str
    port: int
    token: str
    pipelines: dict[str, str]
    """Pipeline name -> config id."""
    path: Path | None = None
    """The file it was read from."""

    def to_json(self) -> str:
        data = {"pid": self.pid, "host": self.host, "port": self.port, "token": self.token}
        return json.dumps({**data, "pipelines": self.pipelines})


def servers_dir(home: Path) -> Path:
    return home / SERVERS_DIR


def connect_host(bind_host: str) -> str:
    """The address a local client reaches a server bound to `bind_host` at."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(
        bind_host, bind_host
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, but not ours
        return True
    return True


def write_entry(home: Path, info: ServerInfo) -> Path:
    """Write `<home>/servers/<pid>.json`, readable by this user only; return its path."""
    folder = servers_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{info.pid}.json"
    tmp = folder / f".{info.pid}.json.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(info.to_json())
    os.replace(tmp, path)
    return path


def read_entries(home: Path) -> list[ServerInfo]:
    """The live servers advertised under a home; files of dead processes (or unreadable ones) are removed."""
    folder = servers_dir(home)
    if os.name != "posix" or not folder.is_dir():  # process probes and file modes below are POSIX's
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            if path.stat().st_uid != os.getuid():
                continue  # written by someone else: never send them our questions
            data = json.loads(path.read_text(encoding="utf-8"))
            info = ServerInfo(
                int(data["pid"]), str(data["host"]), int(data["port"]), str(data["token"]),
                {str(k): str(v) for k, v in data["pipelines"].items()}, path,
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.debug("ignoring unreadable server file %s", path)
            continue
        if not pid_alive(info.pid):
            forget(info)
            continue
        found.append(info)
    return found


def find_server(cfg: PipelineConfig) -> tuple[ServerInfo, str] | None:
    """A live server that serves exactly this config, and the pipeline name it serves it under."""
    wanted = config_id(cfg)
    for info in read_entries(cfg.home_dir()):
        for name, cid in info.pipelines.items():
            if cid == wanted:
                return info, name
    return None


def forget(info: ServerInfo) -> None:
    """Remove the file of a server that is gone."""
    if info.path is not None:
        with contextlib.suppress(OSError):
            info.path.unlink()
            log.debug("removed the file of a server that is gone: %s", info.path)


class Unreachable(Exception):
    """No connection to the server could be made: nothing was sent, so the caller may do the work itself."""


def call(
    info: ServerInfo,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    connect_timeout_s: float = 2.0,
    read_timeout_s: float | None = None,
) -> tuple[int, bytes]:
    """One HTTP request to a local server, never through a proxy (no HTTP_PROXY may see the token): (status, body).

    Raises `Unreachable` when no connection could be made (nothing was sent), `OSError` when it broke after.
    `read_timeout_s=None` waits as long as the query runs."""
    conn = HTTPConnection(info.host, info.port, timeout=connect_timeout_s)
    try:
        try:
            conn.connect()
        except OSError as exc:
            raise Unreachable(f"{info.host}:{info.port}: {exc}") from exc
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout_s)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {info.token}", "Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Advertiser:
    """Writes a server's files once it answers `/healthz`, and removes them on `stop()` (a background thread)."""

    def __init__(self, info: ServerInfo, homes: list[Path], *, timeout_s: float = 600.0) -> None:
        self.info = info
        self.homes = list(dict.fromkeys(homes))
        self.timeout_s = timeout_s
        self.paths: list[Path] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ragcli-advertise", daemon=True)

    def start(self) -> Advertiser:
        self._thread.start()
        return self

    def _ready(self) -> bool:
        try:
            return call(self.info, "GET", "/healthz", connect_timeout_s=1, read_timeout_s=2)[0] == 200
        except (Unreachable, OSError):
            return False

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self._ready():
                for home in self.homes:
                    try:
                        self.paths.append(write_entry(home, self.info))
                    except OSError as exc:
                        log.warning("cannot advertise the server for the CLI under %s: %s", home, exc)
                return
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for path in self.paths:
            with contextlib.suppress(OSError):
                path.unlink()


@contextlib.contextmanager
def advertised(info: ServerInfo | None, homes: list[Path]) -> Iterator[None]:
    """Advertise the server while the block runs (once it answers); remove its files when the block ends.

    SIGTERM ends the block too: uvicorn shuts down gracefully on it and then re-raises it, which would otherwise
    end the process before the files are removed.
    """
    if info is None or os.name != "posix":
        yield
        return
    advertiser = Advertiser(info, homes).start()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        advertiser.stop()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)
