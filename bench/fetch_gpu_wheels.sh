#!/usr/bin/env bash
# Download (here, with network) the wheels bench/gpu_check.sh installs on a GPU machine without
# internet: what its image lacks (the H200 image has torch 2.11+cu130, transformers 5.17, peft,
# accelerate; not trl, datasets, unsloth, unsloth_zoo, bitsandbytes). For CPython 3.12, x86-64 Linux.
# Everything lands in .whl/ (git-ignored) and stays under the 64 MiB a device call carries: the
# bitsandbytes wheel (60 MB, a library per CUDA version) is cut down to the library of the target's
# CUDA (CUDA=130 by default, torch's cu130; 3.5 MB) and its CPU one.
#   usage: bench/fetch_gpu_wheels.sh            CUDA=128 bench/fetch_gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CUDA=${CUDA:-130}
PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
      --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
rm -rf .whl && mkdir -p .whl .whl/.full
"$PY" -m pip download --no-deps "${PLAT[@]}" -d .whl \
  trl==1.15.0 datasets==4.8.5 "dill>=0.3.0,<0.4.1" "multiprocess<0.70.19" \
  unsloth==2026.10.9 unsloth_zoo==2026.10.9 cut_cross_entropy==25.1.1
"$PY" -m pip download --no-deps "${PLAT[@]}" -d .whl/.full bitsandbytes==0.49.2
"$PY" - "$CUDA" .whl/.full/bitsandbytes-*.whl <<'PYEOF'
import base64, hashlib, re, sys, zipfile
from pathlib import Path
cuda, src = sys.argv[1], Path(sys.argv[2])
dst = Path(".whl") / src.name
keep = lambda n: not re.search(r"libbitsandbytes_(cuda\d+|rocm\d+)\.so$", n) or n.endswith(f"_cuda{cuda}.so")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
    rows = []
    for name in zin.namelist():
        if name == record_name or not keep(name):
            continue
        data = zin.read(name)
        zout.writestr(name, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}")
    zout.writestr(record_name, "\n".join(rows + [f"{record_name},,"]) + "\n")
print(f"{dst}: kept the CUDA {cuda} library ({dst.stat().st_size / 2**20:.1f} MiB)")
PYEOF
rm -rf .whl/.full
du -sh .whl
