#!/usr/bin/env bash
# GPU check (issue 12): SFT 5 steps and GRPO 3 steps (t4 preset, 4 generations) on a
# Qwen2.5-VL-3B-shaped model with random weights, with the hf and the Unsloth backend; prints step
# time, peak GPU memory and the rewards, and writes $OUT/gpu_check.md (+ .json, .log).
#
# On a machine with one NVIDIA GPU and no internet, from the repository root, with the wheels of
# bench/fetch_gpu_wheels.sh in .whl/ (run that here first, where there is network):
#   bash bench/gpu_check.sh                      both backends (about 10 minutes on an H200)
#   bash bench/gpu_check.sh --backends hf        one backend per call, to stay within a call's limit
#   bash bench/gpu_check.sh --no-4bit            16-bit LoRA (no bitsandbytes)
# Extra arguments go to bench/gpu_check.py (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=${GPU_CHECK_SITE:-/tmp/robust-r1-site}
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers, trl, peft; print('torch', torch.__version__, '| transformers', transformers.__version__, '| trl', trl.__version__, '| peft', peft.__version__)"
exec python3 bench/gpu_check.py --out "${OUT:-bench/gpu_check_out}" "$@"
