"""Cost of FactorCL's concat critic: the pair tensor [N, N, in_a + in_b] through the whole MLP
(the textbook form) against :class:`ConcatCritic`, whose linear first layer is applied to the
N rows of each side and summed over the pairs. Forward + backward, side by side in one run,
same weights; prints the ratio and the largest score difference.

    python benchmarks/costs/factorcl_critic.py              # N 64, widths of trifeatures_tokens
    python benchmarks/costs/factorcl_critic.py --dim 512    # the 224 px width
"""

from __future__ import annotations

import argparse
import time

import torch

from infmasking.models.baseline_heads import ConcatCritic


def pair_tensor_scores(critic: ConcatCritic, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    n = a.shape[0]
    pairs = torch.cat([a[:, None].expand(n, n, -1), b[None].expand(n, n, -1)], -1)
    return critic.net(pairs).squeeze(-1)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dim", type=int, default=64, help="backbone width d (conditional: 2d + 2d)")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for width in (args.dim, 2 * args.dim):  # the plain and the conditional critics
        critic = ConcatCritic(width, width, args.hidden)
        a = torch.randn(args.batch, width, requires_grad=True)
        b = torch.randn(args.batch, width, requires_grad=True)
        diff = (pair_tensor_scores(critic, a, b) - critic(a, b)).abs().max().item()
        t_pairs = timed(
            lambda c=critic, a=a, b=b: pair_tensor_scores(c, a, b).sum().backward(), args.repeats
        )
        t_rows = timed(lambda c=critic, a=a, b=b: c(a, b).sum().backward(), args.repeats)
        rows.append((width, t_pairs, t_rows, diff))
    print(f"N {args.batch}, hidden {args.hidden}, {args.threads} thread(s), forward + backward")
    print("| input widths | pair tensor (ms) | ConcatCritic (ms) | speed-up | max |Δ score| |")
    print("|---|---|---|---|---|")
    for width, t_pairs, t_rows, diff in rows:
        print(
            f"| {width} + {width} | {1e3 * t_pairs:.1f} | {1e3 * t_rows:.1f} | "
            f"{t_pairs / t_rows:.2f}x | {diff:.1e} |"
        )


if __name__ == "__main__":
    main()
