#!/usr/bin/env bash
# Prepared check for a lent H100/H200 (image with torch, triton, cupy, ncu). Installs nothing the
# image lacks: only this package itself, without dependencies. Fails soft per step; every figure
# goes to $OUT (default ./out): gpu_check.json, pytest_gpu.txt/.xml, nvidia_smi.txt.
# Sized for < 8 minutes: pytest -m gpu (~2 min incl. one ~35 s load_inline build), 10 solutions
# timed against eager and torch.compile (budget-limited), one ncu profile.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-./out}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
start=$(date +%s)

nvidia-smi > "$OUT/nvidia_smi.txt" 2>&1 || echo "nvidia-smi failed" >> "$OUT/nvidia_smi.txt"
$PY -m pip install -e . --no-deps -q > "$OUT/pip_install.txt" 2>&1 || echo "pip install -e . failed (continuing with PYTHONPATH=src)"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_DEFAULT_FP_FUSION=1

# 1. GPU tests (timer, compiled Triton solutions at every variant, load_inline runtime path).
timeout 200 $PY -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider --timeout 150 \
    --junitxml="$OUT/pytest_gpu.xml" > "$OUT/pytest_gpu.txt" 2>&1
echo "pytest -m gpu exit $?" | tee -a "$OUT/pytest_gpu.txt"
tail -5 "$OUT/pytest_gpu.txt"

# 2. Solutions vs eager / torch.compile with CudaTimer (cold L2), plus one ncu profile.
elapsed=$(( $(date +%s) - start ))
budget=$(( 360 - elapsed ))
[ "$budget" -lt 60 ] && budget=60
timeout $(( budget + 90 )) $PY scripts/gpu_check.py --out "$OUT" --budget-s "$budget" 2>&1 | tee "$OUT/gpu_check_log.txt"
echo "gpu_check.py exit ${PIPESTATUS[0]}; total $(( $(date +%s) - start )) s"
exit 0
