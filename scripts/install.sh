#!/usr/bin/env bash
# Installs LFR Workbench and what it needs, on a fresh Debian/Ubuntu machine or in a venv.
#   scripts/install.sh          the app and library (default engine: dlib, CPU)
#   scripts/install.sh test     also the test tools: PyTorch (CPU), Chromium, ffmpeg
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "test" ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null
    else
      echo "note: Chromium and ffmpeg are missing and cannot be installed without root;" \
           "the browser tests will skip" >&2
    fi
  fi
  # torchvision must match torch (onnx2torch imports it); these two lie on the project's machines.
  "$PY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  "$PY" -m pip install -q -e ".[test]"
else
  "$PY" -m pip install -q -e .
fi
