#!/usr/bin/python3
"""compare_trace.py: two GAN training records (models/gan_trace.h's names) side by side.

    /usr/bin/python3 bench/pytorch/compare_trace.py ours.safetensors pytorch.safetensors [--every 20]

Prints, every --every steps, each side's D and G losses, D(x) and D(G(z)), and the relative
difference of the losses; then, per BatchNorm buffer, the largest relative difference over all
steps; the final weights' relative differences; and the eval-mode samples' largest difference.
Relative differences are |a - b| / max(|b|, 1e-12) for scalars, ||a - b|| / ||b|| for tensors.
Needs only numpy.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ours")
    p.add_argument("theirs")
    p.add_argument("--every", type=int, default=20)
    args = p.parse_args()
    a, _ = read_safetensors(args.ours)
    b, _ = read_safetensors(args.theirs)
    steps = len(b["loss_d"])
    print(f"{'step':>5} | {'loss_d':>8} {'(ref)':>8} {'rel':>8} | {'loss_g':>8} {'(ref)':>8} {'rel':>8} | "
          f"{'D(x)':>6} {'(ref)':>6} | {'D(G(z))':>7} {'(ref)':>7}")
    for s in list(range(0, steps, args.every)) + ([steps - 1] if (steps - 1) % args.every else []):
        ld, lg = (abs(a[k][s] - b[k][s]) / max(abs(b[k][s]), 1e-12) for k in ("loss_d", "loss_g"))
        print(f"{s + 1:5d} | {a['loss_d'][s]:8.4f} {b['loss_d'][s]:8.4f} {ld:8.1e} | {a['loss_g'][s]:8.4f} "
              f"{b['loss_g'][s]:8.4f} {lg:8.1e} | {a['d_real'][s]:6.3f} {b['d_real'][s]:6.3f} | "
              f"{a['d_fake'][s]:7.3f} {b['d_fake'][s]:7.3f}")
    for k in ("loss_d", "loss_g", "d_real", "d_fake"):
        r = np.abs(a[k].astype(np.float64) - b[k]) / np.maximum(np.abs(b[k].astype(np.float64)), 1e-12)
        print(f"{k}: max relative difference {r.max():.2e} (step {int(r.argmax()) + 1}), mean {r.mean():.2e}")
    for k in sorted(n for n in b if n.startswith("bn.")):
        per_step = [rel(a[k][s], b[k][s]) for s in range(steps)]
        print(f"{k}: relative difference at step 1 {per_step[0]:.1e}, last {per_step[-1]:.1e}, max {max(per_step):.1e}")
    for k in sorted(n for n in b if n.startswith("final.") and not n.endswith("num_batches_tracked")):
        print(f"{k}: relative difference {rel(a[k], b[k]):.2e}")
    print(f"eval_fake: relative difference {rel(a['eval_fake'], b['eval_fake']):.2e}, "
          f"max abs {np.abs(a['eval_fake'].astype(np.float64) - b['eval_fake']).max():.2e}")


if __name__ == "__main__":
    main()
