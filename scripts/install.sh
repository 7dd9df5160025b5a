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

# Installed with --no-deps: insightface's wheels require `opencv-python` (the GUI build, needing
# libGL) beside our `opencv-python-headless`; both own the `cv2` package and overwrite each other.
# What insightface itself needs at run time is declared in the "insightface" extra.
nodeps=()
if [[ " ${extras[*]:-} " == *" test "* || " ${extras[*]:-} " == *" insightface "* ]]; then
  nodeps+=("insightface>=2.0")
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

also=()
for req in "${nodeps[@]:-}"; do
  [ -n "$req" ] && also+=(--also "$req")
done
if [ -z "${LFR_FORCE_INSTALL:-}" ] && "$PY" scripts/install_check.py "${also[@]}" "${extras[@]}"; then
  exit 0
fi
echo "installing $spec ..." >&2
"$PY" -m pip install -q -e "$spec"
if [ ${#nodeps[@]} -gt 0 ]; then
  "$PY" -m pip install -q --no-deps "${nodeps[@]}"
fi
