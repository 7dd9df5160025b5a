#!/usr/bin/env bash
# Installs LFR Workbench with the app (only what is missing), then starts Streamlit on the default
# (dlib, CPU) engine. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh app
exec "${PYTHON:-python3}" -m streamlit run app/Home.py --server.headless true --browser.gatherUsageStats false "$@"
