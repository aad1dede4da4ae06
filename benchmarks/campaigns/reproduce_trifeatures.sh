#!/usr/bin/env bash
# The committed Trifeatures reproduction at CPU scale (benchmarks/results/trifeatures_cpu/):
# InfMasking, CoMM, Cross, Cross+Self × seeds 0, 1, 2; 64 px, 3 epochs of the 10 000 biased
# pairs at batch 64 = 468 steps for every method; published SimCLR augmentation.
set -euo pipefail
infmasking reproduce trifeatures --preset trifeatures --optim.epochs 3 \
  --methods '[infmasking, comm, cross, cross_self]' --seeds '[0, 1, 2]' \
  --trainer.progress_bar false --trainer.num_threads "${THREADS:-2}" \
  --out_dir runs/reproduce_trifeatures_cpu "$@"
