#!/usr/bin/env bash
# The published Trifeatures run on one GPU (issue: the published architecture end to end): the
# trifeatures224 preset (224 px, two AlexNet trunks, d 512, T 6, mask_ratio 0.7, λ 1, τ 0.1,
# lr 3e-4, batch 64) for 100 epochs = 15 600 steps, InfMasking and CoMM on the biased pairs,
# bf16 autocast, the image bank on the GPU (trainer.data_on_device), published probe after
# epochs 10, 50 and 100; then the same summary as the CPU
# campaign (benchmarks/campaigns/trifeatures64_curves.py: per method and probed epoch every task's balanced
# accuracy, synergy AUROC, steps, training seconds). Every run is a resumable run folder
# (checkpoints every 1000 steps): re-running finishes what is missing. The step is compiled
# (COMPILE=true, torch.compile; COMPILE_MODE=reduce-overhead adds CUDA graphs); with
# RUN_LIMIT=S each run is stopped after S seconds (a stop checkpoint: re-running resumes it).
#   bash benchmarks/campaigns/trifeatures224_gpu.sh                  # seed 42 of both methods
#   SEEDS="42 43 44" bash benchmarks/campaigns/trifeatures224_gpu.sh  # more seeds
# Smoke test on a CPU (tests/test_curves_script.py): PRESET=tiny ACCELERATOR=cpu
#   PRECISION=32-true EPOCHS=1 PROBES='[1]' bash benchmarks/campaigns/trifeatures224_gpu.sh
set -euo pipefail
ROOT=${ROOT:-runs/trifeatures224_gpu}
OUT=${OUT:-benchmarks/results/trifeatures224_gpu}
SEEDS=${SEEDS:-42}
PRESET=${PRESET:-trifeatures224}
EPOCHS=${EPOCHS:-100}
PROBES=${PROBES:-[10, 50, 100]}
ACCELERATOR=${ACCELERATOR:-gpu}
PRECISION=${PRECISION:-bf16-mixed}
COMPILE=${COMPILE:-true}              # trainer.compile (torch.compile of the step)
COMPILE_MODE=${COMPILE_MODE:-default} # or reduce-overhead (CUDA graphs)
CKPT_EVERY=${CKPT_EVERY:-1000}
RUN_LIMIT=${RUN_LIMIT:-}              # seconds per run: SIGTERM then (stop checkpoint, resumable)
COMMON=(--preset "$PRESET" --optim.epochs "$EPOCHS" --eval.probe_at "$PROBES"
        --trainer.accelerator "$ACCELERATOR" --trainer.devices 1 --trainer.precision "$PRECISION"
        --trainer.checkpoint_every_n_steps "$CKPT_EVERY" --trainer.finite_check_every_n_steps 50
        --trainer.data_on_device true
        --trainer.compile "$COMPILE" --trainer.compile_mode "$COMPILE_MODE"
        --trainer.progress_bar false
        --trainer.log_every_n_steps 50 --data.trifeatures.biased true)
mkdir -p "$ROOT" "$OUT"
for seed in $SEEDS; do
  for m in infmasking comm; do
    out="$ROOT/$m/seed$seed"
    if [ ! -f "$out/report.json" ]; then
      start=$(date +%s)
      rc=0
      ${RUN_LIMIT:+timeout -s TERM "$RUN_LIMIT"} ${INFMASKING:-infmasking} train "${COMMON[@]}" \
        --method.name "$m" --seed "$seed" --out_dir "$out" || rc=$?
      echo "$m seed $seed: $(( $(date +%s) - start )) s wall (training, probes and report; exit $rc)" \
        | tee -a "$ROOT/wall_seconds.txt"
    fi
  done
done
${PYTHON:-python} benchmarks/campaigns/trifeatures64_curves.py --runs "$ROOT" --out "$OUT" --methods infmasking comm \
  --seeds $SEEDS --epochs "$EPOCHS" --all_tasks --include_unfinished \
  --title "Trifeatures 224 px ($ACCELERATOR, $PRECISION)" --script "bash benchmarks/campaigns/trifeatures224_gpu.sh"
[ -f "$ROOT/wall_seconds.txt" ] && cp "$ROOT/wall_seconds.txt" "$OUT/"
