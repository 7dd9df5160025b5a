#!/usr/bin/env bash
# The GPU live path's checks and benchmark in one run (issue 14, item 6), for a machine with CUDA.
#
#   bash benchmarks/run_gpu_live.sh            # about 3 minutes on a GPU once models are loaded
#   LFR_MODEL_PACK=buffalo_l bash benchmarks/run_gpu_live.sh   # also InsightFace (a real pack)
#
# 1. the CUDA tests of the PyTorch runtime (detector and recognizer on the GPU, fp32 detections
#    equal to onnxruntime's on the CPU, the engine reporting cuda for both parts);
# 2. bench_live.py --hd (1920x1080, 10 faces, target >= 30 recognition steps/s) with dlib-torch
#    (MMOD detector and ResNet in PyTorch on CUDA);
# 3. the same with an InsightFace pack through the PyTorch runtime, when LFR_MODEL_PACK names a
#    real pack (installed with `lfr-eval models install`; a test-built pack finds no real face).
# Results go to $OUT (default benchmarks/results) as live_hd_*_cuda.json. Without CUDA it stops
# at once: nothing here runs on the CPU instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
python - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit("no CUDA on this machine (torch.cuda.is_available() is False): nothing to measure")
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
EOF
python -m pytest -q -p no:cacheprovider tests/test_torch_runtime.py -k cuda
python benchmarks/bench_live.py --hd --engine dlib-torch --dlib-detector cnn --runtime torch \
    --device cuda --cores 0 --json "$out/live_hd_dlib_torch_cuda.json"
if [ -n "${LFR_MODEL_PACK:-}" ]; then
    python benchmarks/bench_live.py --hd --engine insightface --runtime torch --device cuda \
        --model-pack "$LFR_MODEL_PACK" --cores 0 --json "$out/live_hd_insightface_torch_cuda.json"
else
    echo "LFR_MODEL_PACK is not set: the InsightFace run is skipped (it needs a real pack)"
fi
