#!/usr/bin/env bash
# The published Trifeatures architecture on this CPU (issue: the published architecture end to
# end): 224 px, two AlexNet trunks (36 + 36 tokens), d 512, T 6, mask_ratio 0.7, λ 1, τ 0.1,
# lr 3e-4, batch 64 — the trifeatures224 preset — for 10 epochs (1 560 steps; the λ ramp spans
# the run's 10 epochs), InfMasking and CoMM, published probe after epochs 1, 2, 5 and 10.
# Two lanes of one torch thread each (benchmarks/costs/lanes.py: side by side gives the same total
# throughput as one two-thread run, 1.02x, and keeps both methods moving; one thread per lane
# also bears the load of other work on the machine). Every run checkpoints every 20 steps and
# resumes exactly after any interruption: re-running the script finishes what is missing.
# Order: seed 42 of both (biased pairs: synergy), then seed 43 of both, then the unbiased-pair
# runs (redundancy, uniqueness) of seed 42. Then the summary (benchmarks/campaigns/trifeatures64_curves.py).
#   bash benchmarks/campaigns/trifeatures224.sh               # all runs in order, then the summary
#   bash benchmarks/campaigns/trifeatures224.sh --only_summary
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures224_cpu}
OUT=${OUT:-benchmarks/results/trifeatures224_cpu}
COMMON=(--preset trifeatures224 --optim.epochs 10 --eval.probe_at '[1, 2, 5, 10]'
        --trainer.checkpoint_every_n_steps 20 --trainer.num_threads 1
        --trainer.progress_bar false --trainer.log_every_n_steps 5)
one() {  # method seed pairs (the layout of benchmarks/campaigns/trifeatures64_curves.py)
  local out="$ROOT/$1/seed$2$([ "$3" = biased ] || echo _unbiased)"
  local biased=$([ "$3" = biased ] && echo true || echo false)
  [ -f "$out/report.json" ] || infmasking train "${COMMON[@]}" --method.name "$1" --seed "$2" \
    --data.trifeatures.biased "$biased" --out_dir "$out"
}
lane() {  # method
  one "$1" 42 biased; one "$1" 43 biased; one "$1" 42 unbiased
}
mkdir -p "$ROOT" "$OUT"
if [ "${1:-}" != "--only_summary" ]; then
  (lane infmasking > "$ROOT.infmasking.log" 2>&1) & (lane comm > "$ROOT.comm.log" 2>&1) & wait
fi
python benchmarks/campaigns/trifeatures64_curves.py --runs "$ROOT" --out "$OUT" --methods infmasking comm \
  --seeds 42 43 --epochs 10 --all_tasks --include_unfinished --title "Trifeatures 224 px (CPU)" \
  --script "bash benchmarks/campaigns/trifeatures224.sh"
