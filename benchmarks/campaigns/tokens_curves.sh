#!/usr/bin/env bash
# Does trifeatures_tokens converge, and how fast? InfMasking and CoMM, seeds 0-2, both pair sets,
# a linear probe after every epoch (6 epochs, 936 steps): probe curves with the runs' training
# time (README "Does InfMasking capture more synergy?", docs/TRIFEATURES.md). Two lanes of one
# torch thread (A: InfMasking, B: CoMM); every run is a resumable run folder. ≈ 25 min on the
# idle 2-core machine.
#   bash benchmarks/campaigns/tokens_curves.sh                 # both lanes, then the tables
#   bash benchmarks/campaigns/tokens_curves.sh --lane A|B      # one lane
#   bash benchmarks/campaigns/tokens_curves.sh --only_tables
set -euo pipefail
ROOT=${ROOT:-runs/tokens_curves}
OUT=${OUT:-benchmarks/results/tokens_curves}
COMMON=(--preset trifeatures_tokens --eval.probe_every 1 --trainer.num_threads 1
        --trainer.progress_bar false --seeds '[0, 1, 2]' --out_dir "$ROOT")
lane() {
  case $1 in
    A) infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods '[infmasking]' ;;
    B) infmasking reproduce trifeatures_tokens "${COMMON[@]}" --methods '[comm]' ;;
    *) echo "unknown lane $1 (A or B)" >&2; exit 2 ;;
  esac
}
mkdir -p "$ROOT"
case "${1:-}" in
  --lane) lane "$2"; exit 0 ;;
  --only_tables) ;;
  *) (lane A > "$ROOT.laneA.log" 2>&1) & (lane B > "$ROOT.laneB.log" 2>&1) & wait ;;
esac
python benchmarks/campaigns/trifeatures64_curves.py --runs "$ROOT" --out "$OUT" --methods infmasking comm \
  --seeds 0 1 2 --epochs 6 --title trifeatures_tokens --script "bash benchmarks/campaigns/tokens_curves.sh"
