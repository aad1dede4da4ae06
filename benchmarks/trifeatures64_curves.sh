#!/usr/bin/env bash
# Trifeatures 64 px, published behaviour, at the budget about two hours of this 2-core CPU allows:
# InfMasking vs CoMM with Cross as the control, seeds 0 and 1, both pair sets (R / U from the
# unbiased pairs, S from the biased pairs), 6 epochs (936 steps, twice the earlier 468; the λ
# horizon is the run's epochs), float32 (bf16-mixed fell back to a slow bf16 GEMM on this
# AVX2 CPU: about 10x slower per step here), a linear probe at epochs 0, 2, 4, 6 (probe
# curves), last and best_valid, never test.
# Two lanes of one torch thread (lane A: seed 0, lane B: seed 1); every run is a resumable run
# folder, so re-running this script finishes what is missing.
#   bash benchmarks/trifeatures64_curves.sh                # both lanes, then the table
#   bash benchmarks/trifeatures64_curves.sh --lane A|B     # one lane
#   bash benchmarks/trifeatures64_curves.sh --only_tables
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures64_curves}
OUT=${OUT:-benchmarks/results/trifeatures64_curves}
COMMON=(--preset trifeatures --optim.epochs 6 --eval.probe_every 2 --eval.select best_valid
        --trainer.num_threads 1 --trainer.progress_bar false --methods '[infmasking, comm, cross]')
lane() {
  case $1 in
    A) seeds='[0]' ;;
    B) seeds='[1]' ;;
    *) echo "unknown lane $1 (A or B)" >&2; exit 2 ;;
  esac
  infmasking reproduce trifeatures "${COMMON[@]}" --seeds "$seeds" --out_dir "$ROOT"
}
mkdir -p "$ROOT"
case "${1:-}" in
  --lane) lane "$2"; exit 0 ;;
  --only_tables) ;;
  *) (lane A > "$ROOT.laneA.log" 2>&1) & (lane B > "$ROOT.laneB.log" 2>&1) & wait ;;
esac
mkdir -p "$OUT"
infmasking reproduce trifeatures "${COMMON[@]}" --seeds '[0, 1]' --out_dir "$ROOT" --only_finished true \
  > /dev/null
cp "$ROOT"/comparison.{md,json,png} "$OUT"/
python benchmarks/trifeatures64_curves.py --runs "$ROOT" --out "$OUT"
