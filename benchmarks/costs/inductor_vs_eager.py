"""The compiled step's numbers against eager: ``torch.compile`` (Inductor, generated kernels)
of both model passes and the loss of the tiny preset, float64, same views and masks; the loss
and every gradient (relative difference of gradients of norm > 1e-6). The CI tests compare
with the aot_eager backend (tests/test_compile.py); this runs Inductor itself (minutes on a
CPU: C++ kernels are compiled).

    python benchmarks/costs/inductor_vs_eager.py --out benchmarks/results/inductor_vs_eager.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from infmasking.data.registry import load_dataset
from infmasking.training.config_files import load_config, presets
from infmasking.training.module import SSLModule


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(presets()[args.preset])
    kw = {"image_size": cfg.data.trifeatures.image_size} if cfg.data.name == "trifeatures" else {}
    data = load_dataset(cfg.data.name, max_pairs=args.batch, **kw)
    torch.manual_seed(0)
    shapes = {m: list(data.input_shape(m)) for m in data.modalities}
    module = SSLModule(cfg, data.modalities, data.kinds, shapes).double()
    batch = data.train[torch.arange(args.batch)]
    views = module.views(batch.inputs, batch.padding, torch.Generator().manual_seed(0))
    (x1, p1), (x2, p2) = (({k: v.double() for k, v in x.items()}, p) for x, p in views)
    meth = module.cfg.method

    def step(x1, x2, generator):
        kw = dict(full=True, num_masks=meth.num_masks, mask_ratio=meth.mask_ratio)
        o1, o2 = module.model.forward_views([(x1, p1), (x2, p2)], generator=generator, **kw)
        return module.objective.loss(o1, o2, meth, 0.5).loss

    state = {k: v.clone() for k, v in module.state_dict().items()}
    res = []
    for fn in (step, torch.compile(step)):
        module.load_state_dict(state)
        loss = fn(x1, x2, torch.Generator().manual_seed(1))
        module.zero_grad()
        loss.backward()
        grads = {n: q.grad.clone() for n, q in module.named_parameters() if q.grad is not None}
        res.append((loss.detach(), grads))
    (l0, g0), (l1, g1) = res
    rel = max(((g0[k] - g1[k]).norm() / g0[k].norm()).item() for k in g0 if g0[k].norm() > 1e-6)
    lines = [
        f"# Inductor vs eager, {args.preset} preset ({meth.name}), B {args.batch}, float64",
        "",
        "Command: `python benchmarks/costs/inductor_vs_eager.py "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:])
        + "`",
        "",
        f"torch {torch.__version__}, CPU. Loss {l0.item():.12f} eager, {l1.item():.12f} "
        f"compiled: relative difference {((l0 - l1).abs() / l0.abs()).item():.1e}; largest "
        f"relative difference of a gradient (norm > 1e-6) {rel:.1e}.",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
