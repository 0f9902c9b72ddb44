#!/usr/bin/python3
"""dcgan64.py: training throughput of DCGAN-64 on the CPU, the PyTorch side of latentlab's bench_models
BM_Dcgan64TrainStepCpu (bench/conv_vs_pytorch.sh).

The model is dcgan64_gpu.py's (models/gan.h's dcgan64, i.e. pytorch/examples dcgan: ngf = ndf = 64,
nz = 100, three channels, 64x64; its layers are imported from there), the step dcgan28.py's gan_step
(models::gan_train_step's order: D on real and on G(z).detach(), two backward passes, D's Adam step;
G through the updated D, G's Adam step; BCE-with-logits, Adam(2e-4, betas (0.5, 0.999))).

    /usr/bin/python3 bench/pytorch/dcgan64.py bench --threads 2 --batch-size 64 --steps 3 --json -

bench:  `repeats` runs of `steps` GAN steps after `warmup`; the median img/s (real images per second).
        The data are 8 batches of random images in [-1, 1] made once beforehand, as latentlab's bench
        holds (8 x 64 x 3 x 64 x 64 floats, 25 MiB; the speed does not depend on the values); the
        noise is drawn inside the step. Flags, thread handling and JSON as dcgan28.py bench.

Threads: as vae_mlp.py (whose helpers this file reuses), OMP_WAIT_POLICY=PASSIVE is set before torch
is imported and both torch's OpenMP pool and OpenBLAS's pthread pool are sized to --threads
(--blas-threads to differ); see bench/pytorch/README.md for why.
"""
import argparse
import os
import statistics
import sys

# Before torch is imported: libgomp reads the wait policy when it loads (see vae_mlp.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcgan28 import gan_step, make_optimizers  # noqa: E402
from dcgan64_gpu import dcgan_init, discriminator, generator  # noqa: E402
from vae_mlp import environment, set_threads, time_steps, write_json  # noqa: E402

IMAGE_SIZE = 64


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, channels=3):
        super().__init__()
        self.nz = nz
        self.main = generator(nz, ngf, channels)

    def forward(self, z):
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, ndf=64, channels=3):
        super().__init__()
        self.main = discriminator(ndf, channels)

    def forward(self, x):
        return self.main(x).view(-1)  # logits (N,)


def cmd_bench(args):
    torch.manual_seed(args.seed)
    g, d = Generator(args.nz, args.ngf, args.channels), Discriminator(args.ndf, args.channels)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g, opt_d = make_optimizers(g, d, args.lr)
    n = args.batch_size
    batches = [torch.rand(n, args.channels, IMAGE_SIZE, IMAGE_SIZE).mul_(2).sub_(1) for _ in range(8)]
    g.train()
    d.train()
    step_index = 0

    def step():
        nonlocal step_index
        real = batches[step_index % len(batches)]
        step_index += 1
        z = torch.randn(n, args.nz)
        return gan_step(g, d, opt_g, opt_d, real, z, args.freeze_d)["loss_g"]

    rates = time_steps(step, n, args.warmup, args.steps, args.repeats)
    median = statistics.median(rates)
    blas_threads = args.blas_threads or args.threads
    print(f"pytorch dcgan64 GAN step: batch {n}, ngf {args.ngf}, ndf {args.ndf}, {args.steps} steps x "
          f"{args.repeats} repeats, {args.threads} threads (BLAS {blas_threads}): median {median:.1f} img/s "
          f"({1e3 * n / median:.0f} ms/step; best {max(rates):.1f}; runs {', '.join(f'{r:.1f}' for r in rates)})",
          flush=True)
    if args.json is not None:
        result = {"benchmark": "dcgan64_train_step", "framework": "pytorch", "device": "cpu",
                  "batch_size": n, "nz": args.nz, "ngf": args.ngf, "ndf": args.ndf, "channels": args.channels,
                  "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                  "images_per_second": median, "images_per_second_best": max(rates),
                  "images_per_second_runs": rates, "ms_per_step": 1e3 * n / median,
                  "mkldnn": torch.backends.mkldnn.is_available(),
                  "environment": environment(args.threads)}
        write_json(result, args.json)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="time whole GAN steps, report img/s")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and OpenBLAS's thread count")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OpenBLAS's thread count when it should differ from --threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--freeze-d", action="store_true",
                   help="D's requires_grad off for G's pass (what latentlab's step does; default: pytorch/examples' step)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="emit the result as JSON on stdout, or into FILE")
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    set_threads(args.threads, args.blas_threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
