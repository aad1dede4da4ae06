#!/usr/bin/env bash
# Why the paper's R/U/S ordering does not appear in the 468-step CPU comparison
# (benchmarks/results/trifeatures_cpu/). Three questions, answered with held-out numbers
# read beside probe-test ones (no setting is chosen on probe-test):
#   1. steps: 12 epochs (1 872 steps) per method on the biased pairs, probed before training
#      (random init) and every 3 epochs -> probe_curve.json / .png;
#   2. augmentation: colour-preserving views (no hue jitter, no grayscale), 468 steps, since
#      synergy depends on colour of image 2;
#   3. probe imbalance: seed-0 runs of the comparison (benchmarks/campaigns/reproduce_trifeatures.sh,
#      run first) and the curves re-probed with a class-weighted probe.
# Two lanes run side by side, one thread each (the machine has 2 cores).
# Results: benchmarks/results/trifeatures_investigation/ (tabulated by benchmarks/campaigns/trifeatures_investigation.py).
set -euo pipefail
OUT=${OUT:-runs/trifeatures_investigation}
COMMON=(--preset trifeatures --trainer.progress_bar false --trainer.num_threads 1)

curve() {  # method
  infmasking train "${COMMON[@]}" --method.name "$1" --optim.epochs 12 --eval.probe_every 3 \
    --out_dir "$OUT/curve_$1" || true
}
colour() {  # method
  infmasking train "${COMMON[@]}" --method.name "$1" --optim.epochs 3 --augment.hue 0 --augment.grayscale_p 0 \
    --out_dir "$OUT/colour_$1" || true
}
reweigh() {  # run folder
  [ -f "$1/evaluation_balanced.json" ] || infmasking evaluate "$1" --class_weight balanced --num_threads 1 || true
}

lane1() {
  curve infmasking
  colour infmasking
  curve comm
  for r in runs/reproduce_trifeatures_cpu/{infmasking,comm}/seed0 "$OUT"/curve_{infmasking,comm}; do reweigh "$r"; done
}
lane2() {
  curve cross
  colour comm
  curve cross_self
  for r in runs/reproduce_trifeatures_cpu/{cross,cross_self}/seed0 "$OUT"/curve_{cross,cross_self}; do reweigh "$r"; done
}
mkdir -p "$OUT"
lane1 > "$OUT/lane1.log" 2>&1 &
lane2 > "$OUT/lane2.log" 2>&1 &
wait
