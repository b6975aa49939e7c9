"""API keys: how they are issued, hashed and checked, and the storage role both back-ends fill.

A key reads `rk-<key_id>.<secret>`. Only `key_id` (public, shown in `ragcli keys list` and in logs) and an
HMAC-SHA256 of the secret under a random per-key salt are stored, so a leaked database reveals no usable key.
The full key is shown once, when it is made. A key carries its tenant scope (a filter that every query it makes is
ANDed with, like `retrieval.tenant`) and its limits (dollars per day, requests per minute).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ragcli.errors import InputError

KEY_PREFIX = "rk-"
_KEY_RE = re.compile(r"^rk-([0-9a-f]{12})\.([A-Za-z0-9_-]{20,128})$")


@dataclass(frozen=True)
class KeyRecord:
    """What is stored about a key: never the secret itself."""

    key_id: str
    tenant: str
    scope: dict[str, Any] | str | None
    """The tenant filter (the YAML mapping form, or an expression); None only for a key made `--unscoped`."""
    name: str = ""
    usd_per_day: float | None = None
    requests_per_minute: int | None = None
    pipelines: tuple[str, ...] = ()
    """Pipelines (`model` names) the key may use; empty: all."""
    created: str = ""
    revoked: bool = False
    salt: str = ""
    digest: str = ""

    def scope_json(self) -> str:
        return json.dumps(self.scope, sort_keys=True)

    @staticmethod
    def scope_from_json(text: str | None) -> dict[str, Any] | str | None:
        value = json.loads(text) if text else None
        if value is None or isinstance(value, str | dict):
            return value
        raise InputError(f"a stored key scope must be a mapping or an expression, got {type(value).__name__}")

    def public(self) -> dict[str, Any]:
        """The fields safe to print: no salt, no digest."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "tenant": self.tenant,
            "scope": self.scope,
            "usd_per_day": self.usd_per_day,
            "requests_per_minute": self.requests_per_minute,
            "pipelines": list(self.pipelines),
            "created": self.created,
            "revoked": self.revoked,
        }


def digest_secret(salt: str, secret: str) -> str:
    """HMAC-SHA256 of the secret keyed with the per-key salt, as hex."""
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


def issue_key(
    tenant: str,
    scope: dict[str, Any] | str | None,
    *,
    name: str = "",
    usd_per_day: float | None = None,
    requests_per_minute: int | None = None,
    pipelines: tuple[str, ...] = (),
) -> tuple[KeyRecord, str]:
    """A new key: the record to store and the full key to show once (it cannot be recovered later)."""
    if not tenant.strip():
        raise InputError("a key needs a tenant name, got an empty one; pass --tenant NAME")
    if usd_per_day is not None and usd_per_day < 0:
        raise InputError(f"usd_per_day must be >= 0, got {usd_per_day}")
    if requests_per_minute is not None and requests_per_minute < 1:
        raise InputError(f"requests_per_minute must be >= 1, got {requests_per_minute}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    record = KeyRecord(
        key_id=key_id,
        tenant=tenant,
        scope=scope,
        name=name,
        usd_per_day=usd_per_day,
        requests_per_minute=requests_per_minute,
        pipelines=tuple(pipelines),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        salt=salt,
        digest=digest_secret(salt, secret),
    )
    return record, f"{KEY_PREFIX}{key_id}.{secret}"


def split_key(key: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed key, else None (the caller says "invalid key" without echoing it)."""
    m = _KEY_RE.match(key.strip())
    return (m.group(1), m.group(2)) if m else None


def verify(record: KeyRecord, secret: str) -> bool:
    """Whether the secret matches the stored digest (constant time)."""
    return hmac.compare_digest(record.digest, digest_secret(record.salt, secret))


class KeyStore(Protocol):
    """Where keys live: SQLite (the embedded default) or PostgreSQL (shared by several gateway processes)."""

    def add(self, record: KeyRecord) -> None: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    def list(self) -> list[KeyRecord]: ...

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False if there is no such key."""
        ...

    def close(self) -> None: ...
