#!/usr/bin/env bash
# Does InfMasking capture more synergy than CoMM? The token Trifeatures benchmark, at convergence,
# with seeds and confidence intervals (README "Does InfMasking capture more synergy?").
#   1. comparison: InfMasking, CoMM, Cross, Cross+Self, MAE, FactorCL x 5 seeds x {biased,
#      unbiased} pairs (MAE and FactorCL were added later, by
#      `infmasking reproduce trifeatures_tokens --methods '[mae, factorcl]' ...` on the same root)
#      (published protocol), plus the randomly initialised network and the raw-input probe;
#   2. what drives it: InfMasking on the biased pairs, T in {1, 6, 16}, mask_ratio in
#      {0.3, 0.5, 0.7, 0.9}, mask_lambda in {0, 0.25, 1, 2}, 5 seeds each (SWEEP_SEEDS), beside
#      the published point (T 6 / 0.7 / 1) and CoMM trained the same way (probes only at the end;
#      50 runs, ≈ 40 min of the idle two cores with --only_sweep);
#   3. tables: comparison.md (reproduce --only_finished), sweep.md (synergy_sweep.py) and
#      sweep_standardised.md (the sweep's checkpoints re-probed with the standardised probe).
# Two lanes of one torch thread each (lane A: comparison seeds 0, 2, 4 then half the sweep;
# lane B: seeds 1, 3 then the other half). Every run is a resumable run folder, so re-running
# this script after a crash finishes what is missing. Nothing is chosen on test.
#   bash benchmarks/campaigns/synergy_tokens.sh              # everything (≈ 2 h on the 2-core CPU)
#   bash benchmarks/campaigns/synergy_tokens.sh --lane A|B   # one lane
#   bash benchmarks/campaigns/synergy_tokens.sh --only_sweep # the sweep alone (two lanes), then the tables
#   bash benchmarks/campaigns/synergy_tokens.sh --only_compare  # the comparison alone (two lanes), then the tables
#   bash benchmarks/campaigns/synergy_tokens.sh --only_tables
set -euo pipefail
ROOT=${ROOT:-runs/synergy_tokens}
OUT=${OUT:-benchmarks/results/synergy_tokens}
COMMON=(--preset trifeatures_tokens --trainer.num_threads 1 --trainer.progress_bar false)
METHODS='[infmasking, comm, cross, cross_self, mae, factorcl]'  # mae, factorcl: added 2026-12-02
# most telling first, so that a cut-short sweep still has every seed of these
# (the published point and CoMM first: every Δ is paired with the published point's same seed)
SPECS=("method.name infmasking" "method.name comm" "method.mask_lambda 0" "method.num_masks 1" "method.mask_ratio 0.9" "method.mask_lambda 2"
       "method.num_masks 16" "method.mask_ratio 0.3" "method.mask_ratio 0.5" "method.mask_lambda 0.25")
SWEEP_SEEDS=${SWEEP_SEEDS:-0 1 2 3 4}  # the committed sweep tables (2026-12-02) have all 5

compare() {  # seeds
  infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods "$METHODS" --seeds "[$1]" \
    --out_dir "$ROOT/compare"
}
sweep() {  # lane parity (0 or 1): every other (spec, seed)
  local i=0
  for spec in "${SPECS[@]}"; do
    for seed in $SWEEP_SEEDS; do
      if (( i % 2 == $1 )); then
        read -r key value <<< "$spec"
        out="$ROOT/sweep/${key##*.}_$value/seed$seed"
        [ -f "$out/report.json" ] || infmasking train "${COMMON[@]}" --seed "$seed" "--$key" "$value" \
          --eval.probe_every 0 --out_dir "$out"
      fi
      i=$((i + 1))
    done
  done
}
lane() {
  case $1 in
    A) compare "0, 2, 4"; sweep 0 ;;
    B) compare "1, 3"; sweep 1 ;;
    *) echo "unknown lane $1 (A or B)" >&2; exit 2 ;;
  esac
}

mkdir -p "$ROOT"
case "${1:-}" in
  --lane) lane "$2"; exit 0 ;;
  --only_sweep) (sweep 0 > "$ROOT.sweepA.log" 2>&1) & (sweep 1 > "$ROOT.sweepB.log" 2>&1) & wait ;;
  --only_compare) (compare "0, 2, 4" > "$ROOT.compareA.log" 2>&1) &
                  (compare "1, 3" > "$ROOT.compareB.log" 2>&1) & wait ;;
  --only_tables) ;;
  *) (lane A > "$ROOT.laneA.log" 2>&1) & (lane B > "$ROOT.laneB.log" 2>&1) & wait ;;
esac
mkdir -p "$OUT"
if [ -d "$ROOT/compare" ]; then  # the comparison tables only where its runs are here
  # the published probe (the runs' own reports), with the controls (a, a x10, b)
  infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods "$METHODS" \
    --seeds '[0, 1, 2, 3, 4]' --out_dir "$ROOT/compare" --only_finished true > /dev/null
  cp "$ROOT"/compare/comparison.{md,json,png} "$OUT"/
  # the same checkpoints re-probed with the standardised probe (its AUROC ranks weak signal)
  infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods "$METHODS" \
    --seeds '[0, 1, 2, 3, 4]' --out_dir "$ROOT/compare" --only_finished true --reprobe true \
    --eval.probe standardised --controls false > /dev/null
  for ext in md json png; do cp "$ROOT/compare/comparison.$ext" "$OUT/comparison_standardised.$ext"; done
  # the same checkpoints re-read by the published probe with the robust reading beside
  # (eval.robust_probe, docs/PROBES.md): comparison_robust.*
  infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods "$METHODS" \
    --seeds '[0, 1, 2, 3, 4]' --out_dir "$ROOT/compare" --only_finished true --reprobe true \
    --controls false > /dev/null
  for ext in md json png; do cp "$ROOT/compare/comparison.$ext" "$OUT/comparison_robust.$ext"; done
fi
if [ -d "$ROOT/sweep" ]; then
  python benchmarks/campaigns/synergy_sweep.py --sweep "$ROOT/sweep" --compare "$ROOT/compare" --out "$OUT" \
    --seeds $SWEEP_SEEDS
  # the same checkpoints re-probed with the standardised probe (where the published probe is the
  # constant W = 0, its AUROC is 50 whatever the features hold): sweep_standardised.*
  for run in "$ROOT"/sweep/*/seed*; do
    if [ -f "$run/report.json" ] && [ ! -f "$run/evaluation_standardised.json" ]; then
      infmasking evaluate "$run" --probe standardised --num_threads 1 > /dev/null
    fi
  done
  python benchmarks/campaigns/synergy_sweep.py --sweep "$ROOT/sweep" --compare "$ROOT/compare" --out "$OUT" \
    --seeds $SWEEP_SEEDS --evaluation evaluation_standardised > /dev/null
fi
