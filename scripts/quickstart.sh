#!/usr/bin/env bash
# The main job, offline: set up, ingest the sample documents, answer a question with citations and its cost.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAGCLI_HOME=${RAGCLI_HOME:-$PWD/.ragcli}
start=$(date +%s)
.venv/bin/ragcli ingest samples/docs --collection quickstart
.venv/bin/ragcli query --collection quickstart "What is the hotel limit per night in Paris?"
.venv/bin/ragcli cost --by stage
echo "quickstart: ingest + query took $(( $(date +%s) - start )) s"
