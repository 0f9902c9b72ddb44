#!/usr/bin/env python3
"""dcgan64_gpu.py: training throughput of pytorch/examples' DCGAN-64 on a GPU, the PyTorch side of
latentlab's bench_models BM_Dcgan64TrainStep (scripts/gpu-check.sh, phase `compare`).

The model is models/gan.h's dcgan64, i.e. pytorch/examples dcgan (ngf = ndf = 64, nz = 100, three
channels), with latentlab's layer order:

    G  z (N, nz, 1, 1)
       ConvT(nz, 8g, 4, 1, 0) BN ReLU     (8g, 4, 4)
       ConvT(8g, 4g, 4, 2, 1) BN ReLU     (4g, 8, 8)
       ConvT(4g, 2g, 4, 2, 1) BN ReLU     (2g, 16, 16)
       ConvT(2g, g, 4, 2, 1)  BN ReLU     (g, 32, 32)
       ConvT(g, C, 4, 2, 1)   Tanh        (C, 64, 64)
    D  Conv(C, d, 4, 2, 1) LeakyReLU(0.2)               (d, 32, 32)
       Conv(d, 2d, 4, 2, 1) BN LeakyReLU(0.2)           (2d, 16, 16)
       Conv(2d, 4d, 4, 2, 1) BN LeakyReLU(0.2)          (4d, 8, 8)
       Conv(4d, 8d, 4, 2, 1) BN LeakyReLU(0.2)          (8d, 4, 4)
       Conv(8d, 1, 4, 1, 0) -> one logit per image (BCE-with-logits, no sigmoid layer)
    No convolution has a bias. Init: conv weights ~ N(0, 0.02), BN weights ~ N(1, 0.02), biases 0.

One step (models::gan_train_step): D on real (target 1) and on G(z).detach() (target 0), two backward
passes, D's Adam step; G through the updated D (target 1), G's Adam step; Adam(2e-4, betas (0.5, 0.999)).
The images are random values in [-1, 1] (the speed does not depend on them), generated on the GPU once;
the noise is drawn inside the step. cuDNN with benchmark mode (its fastest algorithms for these shapes)
and, as in latentlab by default, TF32 off: both frameworks compute in full FP32.

    python3 bench/pytorch/dcgan64_gpu.py --batch-size 128 --steps 50 --warmup 10 --repeats 5 --json out.json

Prints one line per repeat and the median images per second; --json writes them.
"""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn


def generator(nz, g, c):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, 8 * g, 4, 1, 0, bias=False), nn.BatchNorm2d(8 * g), nn.ReLU(True),
        nn.ConvTranspose2d(8 * g, 4 * g, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * g), nn.ReLU(True),
        nn.ConvTranspose2d(4 * g, 2 * g, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU(True),
        nn.ConvTranspose2d(2 * g, g, 4, 2, 1, bias=False), nn.BatchNorm2d(g), nn.ReLU(True),
        nn.ConvTranspose2d(g, c, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(d, c):
    return nn.Sequential(
        nn.Conv2d(c, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * d), nn.LeakyReLU(0.2, True),
        nn.Conv2d(4 * d, 8 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * d), nn.LeakyReLU(0.2, True),
        nn.Conv2d(8 * d, 1, 4, 1, 0, bias=False))


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--allow-tf32", action="store_true", help="let cuDNN and cuBLAS use TF32 (default: full FP32)")
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("dcgan64_gpu.py: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = a.allow_tf32
    torch.backends.cudnn.allow_tf32 = a.allow_tf32
    dev = torch.device("cuda")
    torch.manual_seed(1)
    nz, n = 100, a.batch_size
    g = generator(nz, 64, 3).to(dev)
    d = discriminator(64, 3).to(dev)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(16, n, 3, 64, 64, device=dev) * 2 - 1
    ones = torch.ones(n, device=dev)
    zeros = torch.zeros(n, device=dev)

    def step(i):
        x = real[i % real.shape[0]]
        d.zero_grad(set_to_none=True)
        loss_real = bce(d(x).view(-1), ones)
        loss_real.backward()
        z = torch.randn(n, nz, 1, 1, device=dev)
        fake = g(z)
        loss_fake = bce(d(fake.detach()).view(-1), zeros)
        loss_fake.backward()
        opt_d.step()
        g.zero_grad(set_to_none=True)
        loss_g = bce(d(fake).view(-1), ones)
        loss_g.backward()
        opt_g.step()
        return loss_g

    for i in range(a.warmup):
        step(i)
    torch.cuda.synchronize()
    rates = []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        for i in range(a.steps):
            loss = step(i)
        loss.item()  # waits for the GPU
        dt = time.perf_counter() - t0
        rates.append(a.steps * n / dt)
        print(f"repeat {r + 1}: {rates[-1]:.1f} img/s ({1e3 * dt / a.steps:.2f} ms/step)")
    result = {"framework": "pytorch", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
              "gpu": torch.cuda.get_device_name(0), "batch_size": n, "steps": a.steps, "repeats": a.repeats,
              "tf32": a.allow_tf32, "img_per_s": rates, "median_img_per_s": statistics.median(rates)}
    print(f"median {result['median_img_per_s']:.1f} img/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
