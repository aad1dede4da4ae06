#!/usr/bin/env bash
# Trifeatures 64 px with the published behaviour (docs/OPTIONS.md defaults), at the budget this
# CPU had left: InfMasking and CoMM, seed 0, both pair sets, 3 epochs (468 steps); and InfMasking
# on the biased pairs as the first 3 epochs of the published 100-epoch λ schedule
# (--method.lambda_epochs 100, synergy only). One thread, resumable; then the two tables.
#   bash benchmarks/campaigns/trifeatures64_published.sh [--only_tables]
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures64_published}
OUT=${OUT:-benchmarks/results/trifeatures64_published}
COMMON=(--preset trifeatures --optim.epochs 3 --trainer.num_threads 1 --trainer.progress_bar false --seeds '[0]')
if [ "${1:-}" != "--only_tables" ]; then
  infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking, comm]' --out_dir "$ROOT/horizon3"
  infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking]' --method.lambda_epochs 100 \
    --ru_unbiased false --out_dir "$ROOT/horizon100"
fi
mkdir -p "$OUT"
infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking, comm]' --out_dir "$ROOT/horizon3" \
  --only_finished true > /dev/null
cp "$ROOT/horizon3/comparison.md" "$OUT/horizon3.md"
infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking]' --method.lambda_epochs 100 \
  --ru_unbiased false --out_dir "$ROOT/horizon100" --only_finished true > /dev/null
cp "$ROOT/horizon100/comparison.md" "$OUT/horizon100.md"
