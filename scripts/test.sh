#!/usr/bin/env bash
# The test suite: setup (idempotent), lint, types, unit and integration tests, all offline.
set -euo pipefail
cd "$(dirname "$0")/.."
RAGCLI_EXTRAS=${RAGCLI_EXTRAS:-local,openai,anthropic,flag,train,serve,postgres,openvino,llamaindex,langchain,dev} bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1
.venv/bin/ruff check ragcli tests benchmarks
.venv/bin/ruff format --check ragcli tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
