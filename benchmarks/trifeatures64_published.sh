#!/usr/bin/env bash
# Trifeatures 64 px with the published behaviour (docs/OPTIONS.md defaults), the budget this CPU
# had left: InfMasking and CoMM, seed 0, both pair sets, 3 epochs (468 steps), probes every
# epoch; and InfMasking as the first 3 epochs of the published 100-epoch λ schedule
# (--method.lambda_epochs 100). Two lanes of one thread; resumable; then the two tables.
#   bash benchmarks/trifeatures64_published.sh [--only_tables]
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures64_published}
OUT=${OUT:-benchmarks/results/trifeatures64_published}
COMMON=(--preset trifeatures --optim.epochs 3 --eval.probe_every 1 --trainer.num_threads 1
        --trainer.progress_bar false --seeds '[0]')
if [ "${1:-}" != "--only_tables" ]; then
  mkdir -p "$ROOT"
  (infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking]' --out_dir "$ROOT/horizon3"
   infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking]' --method.lambda_epochs 100 \
     --out_dir "$ROOT/horizon100") > "$ROOT.laneA.log" 2>&1 &
  (infmasking reproduce trifeatures "${COMMON[@]}" --methods '[comm]' --out_dir "$ROOT/horizon3") \
    > "$ROOT.laneB.log" 2>&1 &
  wait
fi
mkdir -p "$OUT"
infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking, comm]' --out_dir "$ROOT/horizon3" \
  --only_finished true > /dev/null
cp "$ROOT/horizon3/comparison.md" "$OUT/horizon3.md"
infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking]' --method.lambda_epochs 100 \
  --out_dir "$ROOT/horizon100" --only_finished true > /dev/null
cp "$ROOT/horizon100/comparison.md" "$OUT/horizon100.md"
