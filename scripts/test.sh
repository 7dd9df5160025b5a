#!/usr/bin/env bash
# Installs everything the tests need (only what is missing), checks lint and types, then runs the
# tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install.sh test
# The same checks as .pre-commit-config.yaml; configuration in pyproject.toml.
"$PY" -m ruff check .
"$PY" -m mypy
mkdir -p test-artifacts
exec "$PY" -m pytest "$@"
