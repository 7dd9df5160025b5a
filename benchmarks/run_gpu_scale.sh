#!/usr/bin/env bash
# Issue 10's GPU benchmark in one run, for a machine with CUDA (about 2 minutes there):
# NPL-scale scoring (200,000 fillers x 154,000 searches, 1,000 thresholds, 4 groups) with the
# torch kernel in fp16 and in fp32, each against the GPU's own matmul of the same size, and a
# check of the numbers against a fp32 reference (bench_scale_gpu.py).
#
#   bash benchmarks/run_gpu_scale.sh        # results in $OUT (default benchmarks/results)
#
# Without CUDA it stops at once: nothing here runs on the CPU instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
python -c "import torch, sys; torch.cuda.is_available() or sys.exit('no CUDA on this machine: nothing to measure'); print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
python benchmarks/bench_scale_gpu.py --precision fp16 --out "$out/bench_scale_gpu_fp16.json"
python benchmarks/bench_scale_gpu.py --precision fp32 --out "$out/bench_scale_gpu_fp32.json"
