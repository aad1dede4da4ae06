#!/usr/bin/env bash
# One GPU lease, one command (run from the repository root on the GPU machine; writes to $OUT):
#   1. benchmarks/costs/gpu_step.py: the trifeatures224 step of InfMasking and CoMM, eager vs
#      compiled vs compiled + CUDA graphs (bf16-mixed, B 64);
#   2. benchmarks/campaigns/trifeatures224_gpu.sh: InfMasking then CoMM, 100 epochs planned,
#      seed 42, compiled, each stopped after RUN_LIMIT seconds (resumable), probes at PROBES;
#   3. the runs' summaries, logs and metrics in $OUT/campaign.tgz.
# Wheels for packages the GPU image lacks (jsonargparse and its needs, clarabel) in .whl/.
#   OUT=/tmp/out RUN_LIMIT=150 bash benchmarks/campaigns/gpu_lease.sh
set -u
OUT=${OUT:-/tmp/gpu_out}
RUN_LIMIT=${RUN_LIMIT:-150}
BENCH_LIMIT=${BENCH_LIMIT:-240}
PROBES=${PROBES:-[10, 30, 100]}
COMPILE_MODE=${COMPILE_MODE:-default}
mkdir -p "$OUT"
T0=$(date +%s)
if ! python3 -c "import jsonargparse, clarabel" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD/src" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
timeout -s TERM "$BENCH_LIMIT" python3 benchmarks/costs/gpu_step.py --preset trifeatures224 \
  --methods infmasking comm --modes eager compiled captured --steps 20 --warmup 4 \
  --out "$OUT/gpu_step.md" 2>&1 | grep -v Warning | tee "$OUT/gpu_step_log.txt" | tail -15
echo "[$(( $(date +%s) - T0 )) s] benchmark done"
mkdir -p /tmp/bin
printf '#!/bin/sh\nexec python3 -c "import sys; from infmasking.cli import main; sys.exit(main(sys.argv[1:]))" "$@"\n' \
  > /tmp/bin/infmasking && chmod +x /tmp/bin/infmasking
export PATH="/tmp/bin:$PATH"
ROOT=/tmp/runs OUT="$OUT/summary" PROBES="$PROBES" RUN_LIMIT="$RUN_LIMIT" PYTHON=python3 \
  COMPILE_MODE="$COMPILE_MODE" bash benchmarks/campaigns/trifeatures224_gpu.sh \
  > "$OUT/campaign_log.txt" 2>&1
echo "[$(( $(date +%s) - T0 )) s] campaign done"
grep -v "^\s*$" "$OUT/campaign_log.txt" | tail -40
for m in infmasking comm; do
  cp /tmp/runs/$m/seed42/metrics.csv "$OUT/summary/${m}_metrics.csv" 2>/dev/null
  cp /tmp/runs/$m/seed42/probe_curve.json "$OUT/summary/${m}_probe_curve.json" 2>/dev/null
done
ls -la "$OUT/summary"
# at most 8 files come back from a lease: the summary, the logs and the metrics in one archive
tar czf "$OUT/campaign.tgz" -C "$OUT" summary campaign_log.txt gpu_step_log.txt \
  && rm -rf "$OUT/summary" "$OUT/campaign_log.txt" "$OUT/gpu_step_log.txt"
ls -la "$OUT"
echo "[$(( $(date +%s) - T0 )) s] done"
