#!/usr/bin/env bash
# Installs LFR Workbench with the app (only what is missing), then starts the web app on the
# default (dlib, CPU) engine at http://127.0.0.1:8501 only. Extra arguments go to 'lfr-eval app'
# (e.g. --port 8502, --engine insightface, --allow-root DIR); an --address other than loopback
# needs users ('lfr-eval users add').
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh app
exec "${PYTHON:-python3}" -m lfr_eval app "$@"
