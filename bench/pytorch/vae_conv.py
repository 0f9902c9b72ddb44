#!/usr/bin/python3
"""vae_conv.py: the PyTorch twin of latentlab's convolutional VAE on Fashion-MNIST (CPU).

The model is models/vae.h's Arch::Conv with the settings `latentlab train vae --arch conv` uses on
Fashion-MNIST (conv_channels w = 32, latent_dim D = 20, beta 1, BCE), layer for layer and with
latentlab's parameter names (encoder.0, encoder.2, fc_mu, fc_logvar, fc_dec, decoder.2, decoder.4;
the same as bench/pytorch/load_run.py's AutoencoderTwin):

    encoder  x (N, 1, 28, 28) in [0, 1]
             encoder.0 Conv(1, w, 4, 2, 1)   LeakyReLU(0.2)             (w, 14, 14)
             encoder.2 Conv(w, 2w, 4, 2, 1)  LeakyReLU(0.2)  Flatten     (2w * 7 * 7)
             fc_mu -> mu (D), fc_logvar -> logvar (D)
    z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)
    decoder  fc_dec (D -> 2w * 7 * 7)  ReLU  Unflatten (2w, 7, 7)
             decoder.2 ConvT(2w, w, 4, 2, 1)  LeakyReLU(0.2)            (w, 14, 14)
             decoder.4 ConvT(w, 1, 4, 2, 1)  -> logits                   (1, 28, 28)
    Every layer has a bias; PyTorch's default init (latentlab's layers use the same).

loss = BCE_with_logits(logits, x, summed) + beta * KL(q(z|x) || N(0, I)) summed, beta = 1; Adam(1e-3);
batch 128; images x/255 (latentlab's Scale::Unit).

    /usr/bin/python3 bench/pytorch/vae_conv.py bench --threads 2 --batch-size 128 --steps 20 --json -

bench:  times whole training steps (zero_grad, forward, loss, backward, Adam step) on 16 real
        Fashion-MNIST batches gathered beforehand (only they are kept, not the whole training set,
        as latentlab's BM_VaeConvTrainStep keeps them); `repeats` runs of `steps` steps after
        `warmup`; prints the median img/s, and with --json prints (or writes to FILE) a JSON object.
        The flags, the thread handling and the JSON are vae_mlp.py's.

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

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae_mlp import environment, image_batches, set_threads, time_steps, write_json  # noqa: E402


class ConvVAE(nn.Module):
    def __init__(self, channels=1, height=28, width=28, conv_channels=32, latent_dim=20):
        super().__init__()
        k, c = conv_channels, channels
        features = 2 * k * (height // 4) * (width // 4)
        self.encoder = nn.Sequential(nn.Conv2d(c, k, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(k, 2 * k, 4, 2, 1),
                                     nn.LeakyReLU(0.2), nn.Flatten())
        self.fc_mu = nn.Linear(features, latent_dim)
        self.fc_logvar = nn.Linear(features, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, features)
        self.decoder = nn.Sequential(nn.ReLU(), nn.Unflatten(1, (2 * k, height // 4, width // 4)),
                                     nn.ConvTranspose2d(2 * k, k, 4, 2, 1), nn.LeakyReLU(0.2),
                                     nn.ConvTranspose2d(k, c, 4, 2, 1))

    def encode(self, x):
        f = self.encoder(x)
        return self.fc_mu(f), self.fc_logvar(f)

    def decode(self, z):
        return self.decoder(self.fc_dec(z))  # logits (N, C, H, W)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z), mu, logvar


def loss_function(logits, x, mu, logvar, beta=1.0):
    """(loss, recon, kl), each summed over the batch."""
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon + beta * kl, recon, kl


def cmd_bench(args):
    torch.manual_seed(args.seed)
    model = ConvVAE(conv_channels=args.conv_channels, latent_dim=args.latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Real batches, gathered beforehand so that the timing is of the training step alone.
    batches = image_batches(args.batch_size, 16, np.arange(256, dtype=np.float32) / np.float32(255.0))
    count = len(batches)
    model.train()
    step_index = 0

    def step():
        nonlocal step_index
        x = batches[step_index % count]
        step_index += 1
        optimizer.zero_grad()
        logits, mu, logvar = model(x)
        loss, _, _ = loss_function(logits, x, mu, logvar, args.beta)
        loss.backward()
        optimizer.step()
        return loss

    rates = time_steps(step, args.batch_size, args.warmup, args.steps, args.repeats)
    median = statistics.median(rates)
    print(f"pytorch vae_conv train step: batch {args.batch_size}, w {args.conv_channels}, D {args.latent_dim}, "
          f"{args.steps} steps x {args.repeats} repeats, {args.threads} threads (BLAS {args.blas_threads or args.threads}): "
          f"median {median:.0f} img/s ({1e3 * args.batch_size / median:.2f} ms/step; best {max(rates):.0f}; runs "
          f"{', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    if args.json is not None:
        result = {"benchmark": "vae_conv_train_step", "framework": "pytorch",
                  "batch_size": args.batch_size, "conv_channels": args.conv_channels,
                  "latent_dim": args.latent_dim, "beta": args.beta, "steps": args.steps,
                  "warmup": args.warmup, "repeats": args.repeats, "images_per_second": median,
                  "images_per_second_best": max(rates), "images_per_second_runs": rates,
                  "ms_per_step": 1e3 * args.batch_size / median,
                  "mkldnn": torch.backends.mkldnn.is_available(),
                  "environment": environment(args.threads)}
        write_json(result, args.json)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bench", help="time training steps, report img/s")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and OpenBLAS's thread count")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="OpenBLAS's thread count when it should differ from --threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--conv-channels", type=int, default=32)
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="emit the result as JSON on stdout, or into FILE")
    p.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    set_threads(args.threads, args.blas_threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
