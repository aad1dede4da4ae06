#!/usr/bin/env bash
# Trifeatures 64 px with the published probe and the published features (issue: evaluation as
# published): InfMasking, CoMM and Cross on the biased pairs (synergy), 6 epochs = 936 steps,
# float32, one torch thread per run, two runs at a time, probes at the end only. Seeds from
# SEEDS (default "0 1 2"). Every run is a resumable run folder; re-running finishes what is
# missing. Then the table: reproduce --only_finished --ru_unbiased false (synergy columns only
# are the protocol's here), both read from the checkpoints: the published probe with the robust
# reading beside (eval.robust_probe, docs/PROBES.md), and the standardised probe.
#   bash benchmarks/campaigns/trifeatures64_published_probe.sh
#   SEEDS="0" bash benchmarks/campaigns/trifeatures64_published_probe.sh
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures64_published_probe}
OUT=${OUT:-benchmarks/results/trifeatures64_published_probe}
SEEDS=${SEEDS:-0 1 2}
COMMON=(--preset trifeatures --optim.epochs 6 --trainer.num_threads 1 --trainer.progress_bar false)
METHODS=(infmasking comm cross)
jobs=()
for seed in $SEEDS; do for m in "${METHODS[@]}"; do jobs+=("$m $seed"); done; done
lane() {  # every other job
  local i=0
  for job in "${jobs[@]}"; do
    if (( i % 2 == $1 )); then
      read -r m seed <<< "$job"
      out="$ROOT/$m/seed$seed"
      [ -f "$out/report.json" ] || infmasking train "${COMMON[@]}" --method.name "$m" \
        --seed "$seed" --out_dir "$out"
    fi
    i=$((i + 1))
  done
}
mkdir -p "$ROOT" "$OUT"
if [ "${1:-}" != "--only_tables" ]; then
  (lane 0 > "$ROOT.lane0.log" 2>&1) & (lane 1 > "$ROOT.lane1.log" 2>&1) & wait
fi
seeds_list=$(echo $SEEDS | sed 's/ /, /g')
for probe in published standardised; do
  infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking, comm, cross]' \
    --seeds "[$seeds_list]" --ru_unbiased false --only_finished true --reprobe true \
    --eval.probe "$probe" --out_dir "$ROOT" > /dev/null
  for ext in md json png; do cp "$ROOT/comparison.$ext" "$OUT/comparison_$probe.$ext"; done
done
