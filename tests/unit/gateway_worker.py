"""One gateway process for the shared-state tests: `python -m tests.unit.gateway_worker HOME KEY N`.

Builds the fake gateway on PostgreSQL state (`RAGCLI_PG_DSN`), priced so every answer costs a few micro-dollars,
sends N chat requests with KEY through FastAPI's TestClient, and prints one JSON line: status counts.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient

from ragcli.serve.app import create_app
from tests.unit.gateway_support import make_gateway


def main() -> None:
    home, key, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    built = make_gateway(home, priced=True, add_keys=False, state={"dsn_env": "RAGCLI_PG_DSN"})
    client = TestClient(create_app(built.gateway))
    codes: Counter[int] = Counter()
    body = {"model": "fake", "messages": [{"role": "user", "content": "hotel limits rule?"}]}
    for _ in range(n):
        r = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        codes[r.status_code] += 1
    built.gateway.state.close()
    print(json.dumps({str(k): v for k, v in codes.items()}))


if __name__ == "__main__":
    main()
