#!/usr/bin/python3
"""cgan28.py: the PyTorch twin of latentlab's conditional GAN, cgan28 (models/gan.h), on Fashion-MNIST (CPU).

dcgan28.py's networks with a learned class embedding on each side (Mirza & Osindero 2014), with
latentlab's parameter names, so a latentlab cgan checkpoint loads with load_state_dict(strict=True):

    G  label_emb Embedding(K, K); h = cat([z, label_emb(y)], 1) -> view (N, nz + K, 1, 1)
       main.0 ConvT(nz + K, 2g, 7, 1, 0) main.1 BN main.2 ReLU ... main.7 Tanh   (as dcgan28.py)
    D  label_emb Embedding(K, 28 * 28); h = cat([x, label_emb(y).view(N, 1, 28, 28)], 1)
       main.0 Conv(C + 1, d, 4, 2, 1) ... main.5 Conv(2d, 1, 7, 1, 0) -> (N,) logits (as dcgan28.py)
    The embeddings keep their N(0, 1) initialization (nn.Embedding's and latentlab's); the
    convolutions and BatchNorms get DCGAN's (dcgan28.weights_init, models::dcgan_init).

The training step is dcgan28.gan_step with both networks bound to the real batch's labels: the fake
images of a step are generated for, and judged under, the labels of that step's real images
(models::gan_train_step_async gives the same `labels` to d.forward(real), g.forward(z) and both
d.forward(fake) calls). Adam 2e-4, betas (0.5, 0.999), BCE-with-logits, last partial batch dropped.

    /usr/bin/python3 bench/pytorch/cgan28.py train --epochs 1 --batch-size 64 --seed 1 --threads 1 \
        --epoch-checkpoints --out-dir runs/pt_cgan       # then: latentlab fid runs/pt_cgan/epoch1
    /usr/bin/python3 bench/pytorch/cgan28.py load-check --run runs/cgan [--idx-label 7 --idx s.idx]

train:      as dcgan28.py train; samples.png has class r in row r; the checkpoints carry
            latentlab's "config" metadata (arch cgan28), so `latentlab fid DIR` scores them with
            the per-class accuracy of a conditional run.
load-check: loads a latentlab cgan run's generator.safetensors and discriminator.safetensors with
            strict=True, prints sample statistics and D's mean output on test images under their
            own and under shifted labels; --idx writes 5,000 samples of the twin's forward pass
            (all of class --idx-label, or cycling through the classes) as an IDX file for
            `latentlab fid FILE`, a check of the forward pass itself (the concatenation order).
"""
import argparse
import json
import os
import struct
import sys
import time

# Before torch is imported: libgomp reads the wait policy when it loads (see vae_mlp.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcgan28 import (IMAGE_SIZE, gan_step, load_images, load_strict, make_optimizers, save_grid,  # noqa: E402
                     set_threads, state_for_file, weights_init, write_safetensors, read_safetensors)
from vae_mlp import DATA_DIR, read_idx  # noqa: E402


class CondGenerator(nn.Module):
    def __init__(self, nz=100, ngf=64, channels=1, num_classes=10):
        super().__init__()
        self.nz, g = nz, ngf
        self.label_emb = nn.Embedding(num_classes, num_classes)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz + num_classes, 2 * g, 7, 1, 0, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU(True),
            nn.ConvTranspose2d(2 * g, g, 4, 2, 1, bias=False), nn.BatchNorm2d(g), nn.ReLU(True),
            nn.ConvTranspose2d(g, channels, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z, labels):
        h = torch.cat([z, self.label_emb(labels)], 1)
        return self.main(h.view(h.shape[0], h.shape[1], 1, 1))


class CondDiscriminator(nn.Module):
    def __init__(self, ndf=64, channels=1, num_classes=10):
        super().__init__()
        d = ndf
        self.label_emb = nn.Embedding(num_classes, IMAGE_SIZE * IMAGE_SIZE)
        self.main = nn.Sequential(
            nn.Conv2d(channels + 1, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * d, 1, 7, 1, 0, bias=False))

    def forward(self, x, labels):
        h = torch.cat([x, self.label_emb(labels).view(x.shape[0], 1, IMAGE_SIZE, IMAGE_SIZE)], 1)
        return self.main(h).view(-1)  # logits (N,)


def make_models(nz=100, ngf=64, ndf=64, channels=1, num_classes=10):
    g = CondGenerator(nz, ngf, channels, num_classes)
    d = CondDiscriminator(ndf, channels, num_classes)
    g.apply(weights_init)  # conv and BatchNorm layers only: the embeddings stay N(0, 1)
    d.apply(weights_init)
    return g, d


def load_labels(split, data_dir=DATA_DIR):
    return torch.from_numpy(read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64))


def cycling_labels(n, num_classes=10, label=-1):
    """apps/gan_lab.cpp gan_labels: all `label`, or 0, 1, ..., K-1, 0, 1, ..."""
    return torch.full((n,), label, dtype=torch.int64) if label >= 0 else torch.arange(n) % num_classes


def run_metadata(args, epoch):
    """The "config" metadata as latentlab's train cgan writes it (compact, sorted keys)."""
    config = {"model": "gan", "arch": "cgan28", "channels": 1, "nz": args.nz, "ngf": args.ngf,
              "ndf": args.ndf, "num_classes": 10}
    return {"config": json.dumps(config, separators=(",", ":"), sort_keys=True), "data": "fashion-mnist",
            "epoch": str(epoch), "seed": str(args.seed), "generator": "bench/pytorch/cgan28.py train",
            "torch": torch.__version__}


def cmd_train(args):
    torch.manual_seed(args.seed)
    x_train, y_train = load_images("train"), load_labels("train")
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    g, d = make_models(args.nz, args.ngf, args.ndf)
    opt_g, opt_d = make_optimizers(g, d, args.lr)
    fixed_z = torch.randn(64, args.nz)
    fixed_y = torch.arange(64) // 8 % 10  # row r of the 8x8 grid is class r, as latentlab's pictures
    n = x_train.shape[0]
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"{'epoch':>5} {'loss_d':>8} {'loss_g':>8} {'D(x)':>6} {'D(G(z))':>8} {'seconds':>8} {'img/s':>7}", flush=True)
    for epoch in range(1, args.epochs + 1):
        g.train()
        d.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        sums = {"loss_d": 0.0, "loss_g": 0.0, "d_real": 0.0, "d_fake": 0.0}
        steps = 0
        for start in range(0, n - args.batch_size + 1, args.batch_size):  # drop the partial batch (BN)
            idx = perm[start:start + args.batch_size]
            real, y = x_train[idx], y_train[idx]
            # The fakes get the real batch's labels (models::gan_train_step_async).
            r = gan_step(lambda z: g(z, y), lambda x: d(x, y), opt_g, opt_d, real, torch.randn(args.batch_size, args.nz))
            sums["loss_d"] += r["loss_real"].item() + r["loss_fake"].item()
            sums["loss_g"] += r["loss_g"].item()
            sums["d_real"] += torch.sigmoid(r["out_real"]).mean().item()
            sums["d_fake"] += torch.sigmoid(r["out_fake"]).mean().item()
            steps += 1
        seconds = time.perf_counter() - t0
        m = {k: v / max(steps, 1) for k, v in sums.items()}
        print(f"{epoch:5d} {m['loss_d']:8.4f} {m['loss_g']:8.4f} {m['d_real']:6.3f} {m['d_fake']:8.3f} "
              f"{seconds:8.1f} {steps * args.batch_size / seconds:7.0f}", flush=True)
        g.eval()
        with torch.no_grad():
            save_grid(os.path.join(args.out_dir, "samples.png"), g(fixed_z, fixed_y))
        if args.epoch_checkpoints:  # DIR/epoch<N>/generator.safetensors: `latentlab fid` reads each
            os.makedirs(os.path.join(args.out_dir, f"epoch{epoch}"), exist_ok=True)
            write_safetensors(os.path.join(args.out_dir, f"epoch{epoch}", "generator.safetensors"), state_for_file(g),
                              run_metadata(args, epoch))
    meta = run_metadata(args, args.epochs)
    write_safetensors(os.path.join(args.out_dir, "generator.safetensors"), state_for_file(g), meta)
    write_safetensors(os.path.join(args.out_dir, "discriminator.safetensors"), state_for_file(d), meta)
    print(f"wrote {args.out_dir}/samples.png, generator.safetensors, discriminator.safetensors")
    return 0


def write_idx_images(path, images):
    """(N, 1, S, S) in [-1, 1] -> an unsigned-byte IDX file (N, S, S), rounded as data::save_images_idx."""
    x = ((images.detach().numpy()[:, 0] + 1.0) * 0.5).clip(0.0, 1.0)
    pixels = np.floor(x * 255.0 + 0.5).astype(np.uint8)  # lround for non-negative values
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">3I", *pixels.shape) + pixels.tobytes())


def cmd_load_check(args):
    gen_path = os.path.join(args.run, "generator.safetensors")
    _, metadata = read_safetensors(gen_path)
    config = json.loads(metadata.get("config", "{}"))
    if config.get("arch") != "cgan28":
        raise SystemExit(f"{gen_path}: arch '{config.get('arch')}'; this twin is cgan28 only")
    nz, ngf, ndf = int(config["nz"]), int(config["ngf"]), int(config["ndf"])
    channels, k = int(config["channels"]), int(config["num_classes"])
    g, d = CondGenerator(nz, ngf, channels, k), CondDiscriminator(ndf, channels, k)
    load_strict(g, gen_path)
    load_strict(d, os.path.join(args.run, "discriminator.safetensors"))
    g.eval()
    d.eval()
    torch.manual_seed(args.seed)
    with torch.no_grad():
        images = g(torch.randn(64, nz), torch.arange(64) // 8 % k)
        print(f"64 samples {tuple(images.shape)}: mean {images.mean().item():.4f}, std {images.std().item():.4f}, "
              f"pixel std across samples {images.std(dim=0).mean().item():.4f}")
        real, y = load_images("t10k")[:512], load_labels("t10k")[:512]
        own = torch.sigmoid(d(real, y)).mean().item()
        shifted = torch.sigmoid(d(real, (y + 1) % k)).mean().item()
        print(f"D (eval mode) on 512 test images: mean D(x | own label) {own:.4f}, D(x | label + 1) {shifted:.4f}")
        if args.png:
            save_grid(args.png, images)
            print(f"wrote {args.png} (row r: class r)")
        if args.idx:
            labels = cycling_labels(args.n, k, args.idx_label)
            out = torch.cat([g(torch.randn(len(part), nz), part) for part in labels.split(500)])
            write_idx_images(args.idx, out)
            print(f"wrote {args.idx}: {args.n} samples, labels {'cycling' if args.idx_label < 0 else args.idx_label}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and OpenBLAS's thread count")
        p.add_argument("--blas-threads", type=int, default=None)
        p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("train", help="train a few epochs, write samples.png and the checkpoints")
    common(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    p.add_argument("--out-dir", default="runs/pytorch_cgan28")
    p.add_argument("--epoch-checkpoints", action="store_true",
                   help="also write OUT_DIR/epoch<N>/generator.safetensors after every epoch")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("load-check", help="load a latentlab cgan run strictly, sample from it")
    common(p)
    p.add_argument("--run", required=True, help="a `latentlab train cgan` output directory")
    p.add_argument("--png", default="", help="write 64 samples (row r: class r) as a PNG grid")
    p.add_argument("--idx", default="", help="write --n samples as an IDX file for `latentlab fid FILE`")
    p.add_argument("--idx-label", type=int, default=-1, help="the class of the IDX samples (default: cycle)")
    p.add_argument("--n", type=int, default=5000)
    p.set_defaults(func=cmd_load_check)

    args = parser.parse_args(argv)
    set_threads(args.threads, args.blas_threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
