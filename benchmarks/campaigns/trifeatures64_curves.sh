#!/usr/bin/env bash
# Trifeatures 64 px, published behaviour, at the budget about two hours of this 2-core CPU allows:
# InfMasking vs CoMM with Cross as the control, both pair sets (R / U from the unbiased pairs,
# S from the biased pairs), 6 epochs (936 steps, twice the earlier 468; the λ horizon is the
# run's epochs), float32 (bf16-mixed fell back to a slow bf16 GEMM on this AVX2 CPU: about 10x
# slower per step here), a linear probe at epochs 0, 2, 4, 6 (probe curves), last and
# best_valid, never test. Seeds 0, 1 and 2 for all three methods and both pair sets. Lanes of one
# torch thread, two at a time (A: seed 0, B: seed 1; then C: InfMasking seed 2 and D: CoMM seed 2
# on the biased pairs — synergy with 3 seeds first, the question; then E: InfMasking seed 2
# unbiased, F: CoMM seed 2 unbiased and Cross seed 2); every run is a resumable run folder, so
# re-running this script finishes what is missing (C / D are the biased halves of E / F).
# 18 runs, 7.1 h of one thread (15-40 min per run): ≈ 3.6 h of the two cores.
#   bash benchmarks/campaigns/trifeatures64_curves.sh                        # all lanes, then the tables
#   bash benchmarks/campaigns/trifeatures64_curves.sh --lane A|B|C|D|E|F     # one lane
#   bash benchmarks/campaigns/trifeatures64_curves.sh --only_tables
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures64_curves}
OUT=${OUT:-benchmarks/results/trifeatures64_curves}
COMMON=(--preset trifeatures --optim.epochs 6 --eval.probe_every 2 --eval.select best_valid
        --trainer.num_threads 1 --trainer.progress_bar false)
lane() {
  case $1 in
    A) args=(--methods '[infmasking, comm, cross]' --seeds '[0]') ;;
    B) args=(--methods '[infmasking, comm, cross]' --seeds '[1]') ;;
    C) args=(--methods '[infmasking]' --seeds '[2]' --ru_unbiased false) ;;
    D) args=(--methods '[comm]' --seeds '[2]' --ru_unbiased false) ;;
    E) args=(--methods '[infmasking]' --seeds '[2]') ;;
    F) args=(--methods '[comm, cross]' --seeds '[2]') ;;
    *) echo "unknown lane $1 (A to F)" >&2; exit 2 ;;
  esac
  infmasking reproduce trifeatures "${COMMON[@]}" "${args[@]}" --out_dir "$ROOT"
}
mkdir -p "$ROOT"
case "${1:-}" in
  --lane) lane "$2"; exit 0 ;;
  --only_tables) ;;
  *) (lane A > "$ROOT.laneA.log" 2>&1) & (lane B > "$ROOT.laneB.log" 2>&1) & wait
     (lane C > "$ROOT.laneC.log" 2>&1) & (lane D > "$ROOT.laneD.log" 2>&1) & wait
     (lane E > "$ROOT.laneE.log" 2>&1) & (lane F > "$ROOT.laneF.log" 2>&1) & wait ;;
esac
mkdir -p "$OUT"
# the table lists runs not (yet) made as not finished; curves.md reads each pair set's finished seeds
infmasking reproduce trifeatures "${COMMON[@]}" --methods '[infmasking, comm, cross]' \
  --seeds '[0, 1, 2]' --out_dir "$ROOT" --only_finished true > /dev/null
cp "$ROOT"/comparison.{md,json,png} "$OUT"/
python benchmarks/campaigns/trifeatures64_curves.py --runs "$ROOT" --out "$OUT" --seeds 0 1 2
