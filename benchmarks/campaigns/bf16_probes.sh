#!/usr/bin/env bash
# Probes of bf16-mixed runs beside the float32 runs of the same seeds (trifeatures_tokens,
# InfMasking, biased pairs, seeds 0 and 1; the float32 runs are those of synergy_tokens.sh).
#   bash benchmarks/campaigns/bf16_probes.sh [--only_tables]
set -euo pipefail
ROOT=${ROOT:-runs/synergy_tokens}
OUT=${OUT:-benchmarks/results/synergy_tokens}
if [ "${1:-}" != "--only_tables" ]; then
  for seed in 0 1; do
    out="$ROOT/bf16/infmasking/seed$seed"
    [ -f "$out/report.json" ] || infmasking train --preset trifeatures_tokens --trainer.num_threads 1 \
      --trainer.progress_bar false --trainer.precision bf16-mixed --seed "$seed" --out_dir "$out"
  done
fi
python - "$ROOT" "$OUT" <<'PY'
import sys
from pathlib import Path
from infmasking.training.folder import RunFolder
root, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = ["# bf16-mixed vs float32: the same runs' probes", "",
        "trifeatures_tokens, InfMasking, biased pairs, last epoch (936 steps); balanced accuracy (%) and synergy "
        "AUROC (%). float32 runs: benchmarks/campaigns/synergy_tokens.sh; bf16: `bash benchmarks/campaigns/bf16_probes.sh`.", "",
        "| seed | precision | redundancy | uniqueness | unique2 | synergy AUROC | train s |", "|---|---|---|---|---|---|---|"]
for seed in (0, 1):
    for name, folder in (("float32", root / "compare" / "infmasking" / f"seed{seed}"),
                         ("bf16-mixed", root / "bf16" / "infmasking" / f"seed{seed}")):
        run = RunFolder(folder)
        if not run.finished:
            continue
        r = run.report()
        rus = r.headline_rus()
        rows.append(f"| {seed} | {name} | {rus['redundancy']:.1f} | {rus['uniqueness']:.1f} | "
                    f"{r.score('unique2'):.1f} | {r.score('synergy', 'auroc'):.1f} | "
                    f"{r.train_seconds:.0f} |")
out.mkdir(parents=True, exist_ok=True)
(out / "bf16_probes.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
