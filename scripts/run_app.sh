#!/usr/bin/env bash
# Installs LFR Workbench and starts the Streamlit app on the default (dlib, CPU) engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${PYTHON:-python3}" -m streamlit run app/Home.py --server.headless true --browser.gatherUsageStats false "$@"
