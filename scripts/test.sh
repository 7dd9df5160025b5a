#!/usr/bin/env bash
# Installs everything the tests need, then runs them. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
mkdir -p test-artifacts
exec "${PYTHON:-python3}" -m pytest "$@"
