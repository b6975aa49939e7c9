"""Real clients against the gateway under uvicorn on 127.0.0.1: the openai SDK (streaming and not) and curl."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from ragcli.serve.app import create_app  # noqa: E402
from tests.unit.gateway_support import Built, LiveServer, make_gateway  # noqa: E402


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Built, str]]:
    built = make_gateway(tmp_path)
    with LiveServer(create_app(built.gateway)) as server:
        yield built, server.base_url
    built.gateway.state.close()


def test_openai_sdk_plain_and_streamed(live: tuple[Built, str]) -> None:
    built, base_url = live
    client = openai.OpenAI(base_url=base_url, api_key=built.keys["acme"], max_retries=0)
    assert [m.id for m in client.models.list()] == ["fake"]

    raw = client.chat.completions.with_raw_response.create(
        model="fake", messages=[{"role": "user", "content": "What is the hotel limits rule?"}]
    )
    resp = raw.parse()
    assert resp.choices[0].message.content.startswith("The answer is in the sources [1].")
    assert resp.usage is not None and resp.usage.completion_tokens == 7 and resp.usage.prompt_tokens > 0
    assert raw.headers["x-ragcli-query-id"] and raw.headers["x-ragcli-cost-usd"] == "0.00000000"
    assert resp.model_extra is not None and resp.model_extra["citations"]

    stream = client.chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "password rotation?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text.startswith("The answer is in the sources [1].") and "Sources:" in text
    assert usage is not None and usage.completion_tokens == 7

    emb = client.embeddings.create(model="fake", input=["hello world"])
    assert len(emb.data[0].embedding) == 64

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def test_openai_sdk_error_in_stream_before_first_token_is_an_http_error(live: tuple[Built, str]) -> None:
    built, base_url = live
    client = openai.OpenAI(base_url=base_url, api_key=built.keys["acme"], max_retries=0)
    with pytest.raises(openai.BadRequestError, match="nosuch"):
        client.chat.completions.create(
            model="fake",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            extra_body={"ragcli": {"where": "nosuch = 1"}},
        )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(live: tuple[Built, str]) -> None:
    built, base_url = live
    body = json.dumps({"model": "fake", "messages": [{"role": "user", "content": "release checklist?"}]})
    out = subprocess.run(
        ["curl", "-sS", "-i", f"{base_url}/chat/completions", "-H", "Content-Type: application/json",
         "-H", f"Authorization: Bearer {built.keys['globex']}", "-d", body],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    head, _, payload = out.partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "x-ragcli-query-id:" in head.lower()
    answer = json.loads(payload)
    assert {Path(c["source"]).parent.name for c in answer["citations"]} == {"globex"}
    streamed = subprocess.run(
        ["curl", "-sS", "-N", f"{base_url}/chat/completions", "-H", "Content-Type: application/json",
         "-H", f"Authorization: Bearer {built.keys['globex']}", "-d", body.replace('"model"', '"stream": true, "model"')],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert streamed.rstrip().endswith("data: [DONE]") and '"usage"' in streamed
    denied = subprocess.run(
        ["curl", "-sS", "-w", "%{http_code}", f"{base_url}/models"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert denied.endswith("401") and '"missing_api_key"' in denied
