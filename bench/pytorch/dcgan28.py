#!/usr/bin/python3
"""dcgan28.py: the PyTorch twin of latentlab's DCGAN-28 (models/gan.h) on Fashion-MNIST (CPU).

The model is models/gan.h's dcgan28, layer for layer and with the same parameter names
(main.N.weight, main.N.bias, main.N.running_mean, ...), so a latentlab checkpoint loads with
load_state_dict(strict=True):

    G  z (N, nz) -> view (N, nz, 1, 1)
       main.0 ConvT(nz, 2g, 7, 1, 0) main.1 BN main.2 ReLU          (2g, 7, 7)
       main.3 ConvT(2g, g, 4, 2, 1)  main.4 BN main.5 ReLU          (g, 14, 14)
       main.6 ConvT(g, C, 4, 2, 1)   main.7 Tanh                    (C, 28, 28) in [-1, 1]
    D  x (N, C, 28, 28)
       main.0 Conv(C, d, 4, 2, 1)    main.1 LeakyReLU(0.2)          (d, 14, 14)
       main.2 Conv(d, 2d, 4, 2, 1)   main.3 BN main.4 LeakyReLU(0.2)  (2d, 7, 7)
       main.5 Conv(2d, 1, 7, 1, 0)   -> view (N,): one logit per image
    No convolution has a bias (BatchNorm follows them). DCGAN's init: conv weights ~ N(0, 0.02),
    BN weights ~ N(1, 0.02), BN biases 0.

The training step is models::gan_train_step's (pytorch/examples dcgan's), BCE-with-logits, Adam(2e-4,
betas (0.5, 0.999)) for both nets:
    D: zero D's grads; BCE(D(x), 1).backward(); fake = G(z); BCE(D(fake.detach()), 0).backward();
       D step                                      (two backward passes accumulate into D's grads)
    G: zero G's grads; BCE(D(fake), 1).backward() through the *updated* D; G step

Needs Debian's PyTorch for the system interpreter (apt-get install python3-torch python3-numpy):

    /usr/bin/python3 bench/pytorch/dcgan28.py bench --threads 2 --batch-size 128 --steps 20 --json -
    /usr/bin/python3 bench/pytorch/dcgan28.py train --epochs 2 --out-dir runs/pt_dcgan
    /usr/bin/python3 bench/pytorch/dcgan28.py load-check --generator runs/dcgan/generator.safetensors \
        [--discriminator runs/dcgan/discriminator.safetensors] [--png samples.png]

bench:      times whole GAN steps (both phases) on real Fashion-MNIST batches in [-1, 1] (x/127.5 - 1,
            as latentlab's Scale::Symmetric); the noise is drawn inside the step, as in training;
            `repeats` runs of `steps` steps after `warmup`; the median img/s (real images per second).
            It keeps 16 batches, not the whole training set, as latentlab's bench does (peak RSS).
train:      a few epochs of the recipe; one line per epoch; writes samples.png (64 fixed codes) and
            generator.safetensors / discriminator.safetensors (PyTorch state_dict names, F32 + I64).
load-check: reads a latentlab generator checkpoint (its "config" metadata gives nz, ngf, channels),
            loads it with strict=True, prints statistics of 64 samples and writes them as a PNG grid.

Threads: as vae_mlp.py (whose helpers this file reuses), OMP_WAIT_POLICY=PASSIVE is set before torch
is imported and both torch's OpenMP pool and OpenBLAS's pthread pool are sized to --threads
(--blas-threads to differ); see bench/pytorch/README.md for why.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time
import zlib

# Before torch is imported: libgomp reads the wait policy when it loads (see vae_mlp.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402
from vae_mlp import DATA_DIR, environment, image_batches, read_idx, set_threads, time_steps, write_json  # noqa: E402

IMAGE_SIZE = 28


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, channels=1):
        super().__init__()
        self.nz = nz
        g = ngf
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, 2 * g, 7, 1, 0, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU(True),
            nn.ConvTranspose2d(2 * g, g, 4, 2, 1, bias=False), nn.BatchNorm2d(g), nn.ReLU(True),
            nn.ConvTranspose2d(g, channels, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, ndf=64, channels=1):
        super().__init__()
        d = ndf
        # pytorch/examples uses LeakyReLU(0.2, inplace=True); in place or not, the values are the
        # same, and out of place mirrors latentlab's layers.
        self.main = nn.Sequential(
            nn.Conv2d(channels, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(d, 2 * d, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * d), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * d, 1, 7, 1, 0, bias=False))

    def forward(self, x):
        return self.main(x).view(-1)  # logits (N,)


def weights_init(m):
    """pytorch/examples dcgan's init (what models::dcgan_init does with latentlab's generator)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make_models(nz=100, ngf=64, ndf=64, channels=1):
    g = Generator(nz, ngf, channels)
    d = Discriminator(ndf, channels)
    g.apply(weights_init)
    d.apply(weights_init)
    return g, d


def make_optimizers(g, d, lr=2e-4):
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    return opt_g, opt_d


def gan_step(g, d, opt_g, opt_d, real, z, freeze_d=False):
    """One step in models::gan_train_step's order; returns a dict of the step's tensors.

    freeze_d: turn D's requires_grad off for G's pass, as models::gan_train_step does (D's gradients
    from that pass are discarded by the next zero_grad(); pytorch/examples computes them anyway).
    The step's values are the same either way; only the work differs."""
    n = real.shape[0]
    ones, zeros = torch.ones(n), torch.zeros(n)
    # (1) D: real (target 1) and fake.detach() (target 0), two backward passes into D's grads.
    opt_d.zero_grad()
    out_real = d(real)
    loss_real = F.binary_cross_entropy_with_logits(out_real, ones)
    loss_real.backward()
    fake = g(z)
    out_fake = d(fake.detach())
    loss_fake = F.binary_cross_entropy_with_logits(out_fake, zeros)
    loss_fake.backward()
    opt_d.step()
    # (2) G through the updated D (target 1: the non-saturating loss).
    opt_g.zero_grad()
    if freeze_d:
        d.requires_grad_(False)
    out = d(fake)
    loss_g = F.binary_cross_entropy_with_logits(out, ones)
    loss_g.backward()
    if freeze_d:
        d.requires_grad_(True)
    opt_g.step()
    return {"out_real": out_real, "out_fake": out_fake, "out_fake_after": out, "fake": fake,
            "loss_real": loss_real, "loss_fake": loss_fake, "loss_g": loss_g}


# ---- data and pictures ---------------------------------------------------------------------------

def load_images(split, data_dir=DATA_DIR):
    """Fashion-MNIST images as float32 (N, 1, 28, 28) in [-1, 1]: v / 127.5 - 1 in float32, the
    same arithmetic as latentlab's Scale::Symmetric table, so the values are bit-identical."""
    raw = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    if raw.ndim != 3 or raw.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"{split}: unexpected image shape {raw.shape}")
    table = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    return torch.from_numpy(table[raw].reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE))


def write_png_gray(path, pixels):
    """A minimal 8-bit grayscale PNG (signature, IHDR, one IDAT, IEND): no imaging library needed."""
    h, w = pixels.shape

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + pixels[y].astype(np.uint8).tobytes() for y in range(h))  # filter 0
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def save_grid(path, images, nrow=8, pad=2):
    """(N, 1, S, S) images in [-1, 1] -> a grid PNG with `pad` black pixels between tiles."""
    x = images.detach().clamp(-1, 1).numpy()
    n, c, s, _ = x.shape
    if c != 1:
        x = x.mean(axis=1, keepdims=True)  # grayscale picture of a colour model: enough for a check
    rows = (n + nrow - 1) // nrow
    grid = np.zeros((rows * (s + pad) + pad, nrow * (s + pad) + pad), np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        grid[pad + r * (s + pad):pad + r * (s + pad) + s, pad + col * (s + pad):pad + col * (s + pad) + s] = x[i, 0]
    write_png_gray(path, np.rint((grid + 1.0) * 127.5))


# ---- subcommands ---------------------------------------------------------------------------------

def cmd_bench(args):
    torch.manual_seed(args.seed)
    g, d = make_models(args.nz, args.ngf, args.ndf)
    opt_g, opt_d = make_optimizers(g, d, args.lr)
    # 16 real batches, gathered beforehand so that the timing is of the GAN step alone; only they are
    # kept (not the whole training set), as latentlab's BM_Dcgan28TrainStep keeps them, so that the
    # peak RSS bench/conv_vs_pytorch.sh reports compares the same data.
    batches = image_batches(args.batch_size, 16, np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0))
    count = len(batches)
    g.train()
    d.train()
    step_index = 0

    def step():
        nonlocal step_index
        real = batches[step_index % count]
        step_index += 1
        z = torch.randn(args.batch_size, args.nz)
        return gan_step(g, d, opt_g, opt_d, real, z, args.freeze_d)["loss_g"]

    rates = time_steps(step, args.batch_size, args.warmup, args.steps, args.repeats)
    median = statistics.median(rates)
    blas_threads = args.blas_threads or args.threads
    print(f"pytorch dcgan28 GAN step: batch {args.batch_size}, ngf {args.ngf}, ndf {args.ndf}, "
          f"{args.steps} steps x {args.repeats} repeats, {args.threads} threads (BLAS {blas_threads}): "
          f"median {median:.0f} img/s ({1e3 * args.batch_size / median:.1f} ms/step; best {max(rates):.0f}; "
          f"runs {', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    if args.json is not None:
        result = {"benchmark": "dcgan28_train_step", "framework": "pytorch",
                  "batch_size": args.batch_size, "nz": args.nz, "ngf": args.ngf, "ndf": args.ndf,
                  "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                  "images_per_second": median, "images_per_second_best": max(rates),
                  "images_per_second_runs": rates, "ms_per_step": 1e3 * args.batch_size / median,
                  "mkldnn": torch.backends.mkldnn.is_available(),
                  "environment": environment(args.threads)}
        write_json(result, args.json)
    return 0


def state_for_file(module):
    """state_dict as numpy for safetensors_np: F32, and num_batches_tracked as I64 (as latentlab)."""
    out = {}
    for name, t in module.state_dict().items():
        a = t.detach().cpu().numpy()
        out[name] = a.astype(np.int64) if name.endswith("num_batches_tracked") else a.astype(np.float32)
    return out


def run_metadata(args, epoch):
    """The "config" metadata as latentlab's train dcgan writes it (compact, sorted keys), so that
    either program can read the other's run."""
    config = {"model": "gan", "arch": "dcgan28", "channels": 1, "nz": args.nz, "ngf": args.ngf,
              "ndf": args.ndf, "num_classes": 10}
    return {"config": json.dumps(config, separators=(",", ":"), sort_keys=True), "data": "fashion-mnist",
            "epoch": str(epoch), "seed": str(args.seed), "generator": "bench/pytorch/dcgan28.py train",
            "torch": torch.__version__}


def cmd_train(args):
    torch.manual_seed(args.seed)
    x_train = load_images("train")
    if args.limit:
        x_train = x_train[:args.limit]
    g, d = make_models(args.nz, args.ngf, args.ndf)
    opt_g, opt_d = make_optimizers(g, d, args.lr)
    fixed_z = torch.randn(64, args.nz)
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
            real = x_train[perm[start:start + args.batch_size]]
            r = gan_step(g, d, opt_g, opt_d, real, torch.randn(args.batch_size, args.nz))
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
            save_grid(os.path.join(args.out_dir, "samples.png"), g(fixed_z))
        if args.epoch_checkpoints:  # DIR/epoch<N>/generator.safetensors: `latentlab fid` reads each
            os.makedirs(os.path.join(args.out_dir, f"epoch{epoch}"), exist_ok=True)
            write_safetensors(os.path.join(args.out_dir, f"epoch{epoch}", "generator.safetensors"), state_for_file(g),
                              run_metadata(args, epoch))
    meta = run_metadata(args, args.epochs)
    write_safetensors(os.path.join(args.out_dir, "generator.safetensors"), state_for_file(g), meta)
    write_safetensors(os.path.join(args.out_dir, "discriminator.safetensors"), state_for_file(d), meta)
    print(f"wrote {args.out_dir}/samples.png, generator.safetensors, discriminator.safetensors")
    return 0


def load_strict(module, path):
    arrays, metadata = read_safetensors(path)
    state = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
    expected = module.state_dict()
    for name, tensor in state.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            state[name] = tensor.to(expected[name].dtype)  # e.g. an F32 counter from another writer
    module.load_state_dict(state, strict=True)  # raises on a missing, extra or mis-shaped tensor
    print(f"loaded {len(state)} tensors from {path} with strict=True")
    return metadata


def config_of(path):
    _, metadata = read_safetensors(path)
    config = json.loads(metadata.get("config", "{}"))
    arch = config.get("arch", "dcgan28")
    if arch != "dcgan28":
        raise SystemExit(f"{path}: arch '{arch}'; this twin is dcgan28 only")
    return config


def cmd_load_check(args):
    config = config_of(args.generator)
    nz, ngf, ndf = int(config.get("nz", 100)), int(config.get("ngf", 64)), int(config.get("ndf", 64))
    channels = int(config.get("channels", 1))
    g = Generator(nz, ngf, channels)
    metadata = load_strict(g, args.generator)
    for key, value in metadata.items():
        print(f"  metadata {key}: {value if len(value) <= 200 else value[:200] + '...'}")
    g.eval()  # the running statistics, as latentlab samples
    torch.manual_seed(args.seed)
    with torch.no_grad():
        images = g(torch.randn(64, nz))
        print(f"64 samples {tuple(images.shape)}: mean {images.mean().item():.4f}, std {images.std().item():.4f}, "
              f"min {images.min().item():.4f}, max {images.max().item():.4f}, "
              f"pixel std across samples {images.std(dim=0).mean().item():.4f}")
        if args.discriminator:
            d = Discriminator(ndf, channels)
            load_strict(d, args.discriminator)
            d.eval()
            real = load_images("t10k")[:64]
            print(f"D (eval mode): mean D(x) on 64 test images {torch.sigmoid(d(real)).mean().item():.4f}, "
                  f"mean D(G(z)) {torch.sigmoid(d(images)).mean().item():.4f}")
    if args.png:
        save_grid(args.png, images)
        print(f"wrote {args.png}")
    return 0


def cmd_trace(args):
    """Trains from a latentlab trace's inputs (models/gan_trace.h) and writes PyTorch's record with
    the same names: the same initial weights, the same images each step and the same noise."""
    if args.float64:  # the float64 reference: every parameter, buffer, image and noise value in double
        torch.set_default_dtype(torch.float64)
    dtype = torch.get_default_dtype()
    inputs, meta = read_safetensors(args.inputs)
    ngf, ndf = int(meta.get("ngf", 64)), int(meta.get("ndf", 64))
    indices = inputs["indices"].astype(np.int64)
    noise = torch.from_numpy(np.ascontiguousarray(inputs["noise"], dtype=np.float32)).to(dtype)
    steps, batch, nz = noise.shape
    g, d = make_models(nz, ngf, ndf)
    for prefix, module in (("G.", g), ("D.", d)):
        state = {k[len(prefix):]: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items() if k.startswith(prefix)}
        for name, tensor in module.state_dict().items():
            state[name] = state[name].to(tensor.dtype)
        module.load_state_dict(state, strict=True)
    opt_g, opt_d = make_optimizers(g, d, args.lr)
    x_train = load_images("train").to(dtype)
    g.train()
    d.train()
    scalars = {k: [] for k in ("loss_d", "loss_g", "d_real", "d_fake", "d_fake_after", "d_accuracy")}
    bn = {}
    t0 = time.perf_counter()
    for s in range(steps):
        real = x_train[torch.from_numpy(indices[s])]
        r = gan_step(g, d, opt_g, opt_d, real, noise[s].clone())
        with torch.no_grad():
            scalars["loss_d"].append(r["loss_real"].item() + r["loss_fake"].item())
            scalars["loss_g"].append(r["loss_g"].item())
            scalars["d_real"].append(torch.sigmoid(r["out_real"].double()).mean().item())
            scalars["d_fake"].append(torch.sigmoid(r["out_fake"].double()).mean().item())
            scalars["d_fake_after"].append(torch.sigmoid(r["out_fake_after"].double()).mean().item())
            correct = (r["out_real"] > 0).sum().item() + (r["out_fake"] <= 0).sum().item()
            scalars["d_accuracy"].append(correct / (2 * batch))
        for prefix, module in (("bn.G.", g), ("bn.D.", d)):
            for name, buf in module.named_buffers():
                if not name.endswith("num_batches_tracked"):
                    bn.setdefault(prefix + name, []).append(buf.detach().numpy().astype(np.float32))
    record = {k: np.asarray(v, np.float32) for k, v in scalars.items()}
    record.update({k: np.stack(v).astype(np.float32) for k, v in bn.items()})
    for prefix, module in (("final.G.", g), ("final.D.", d)):
        record.update({prefix + k: v for k, v in state_for_file(module).items()})
    g.eval()
    with torch.no_grad():
        fixed_z = torch.from_numpy(np.ascontiguousarray(inputs["fixed_z"], dtype=np.float32)).to(dtype)
        record["eval_fake"] = g(fixed_z).numpy().astype(np.float32)
    write_safetensors(args.record, record, {"framework": "pytorch", "torch": torch.__version__,
                                            "threads": str(args.threads), "dtype": str(dtype)})
    print(f"pytorch trace: {steps} steps of batch {batch} in {time.perf_counter() - t0:.1f} s; wrote {args.record}",
          flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and OpenBLAS's thread count")
        p.add_argument("--blas-threads", type=int, default=None,
                       help="OpenBLAS's thread count when it should differ from --threads")
        p.add_argument("--seed", type=int, default=1)

    def model(p):
        p.add_argument("--batch-size", type=int, default=128)
        p.add_argument("--nz", type=int, default=100)
        p.add_argument("--ngf", type=int, default=64)
        p.add_argument("--ndf", type=int, default=64)
        p.add_argument("--lr", type=float, default=2e-4)

    p = sub.add_parser("bench", help="time GAN steps, report img/s")
    common(p)
    model(p)
    p.add_argument("--freeze-d", action="store_true",
                   help="D's requires_grad off for G's pass (what latentlab's step does; default: pytorch/examples' step)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="emit the result as JSON on stdout, or into FILE")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train a few epochs, write samples.png and the checkpoints")
    common(p)
    model(p)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="use the first N training images (0: all)")
    p.add_argument("--out-dir", default="runs/pytorch_dcgan28")
    p.add_argument("--epoch-checkpoints", action="store_true",
                   help="also write OUT_DIR/epoch<N>/generator.safetensors after every epoch")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("load-check", help="load a latentlab DCGAN-28 checkpoint strictly, sample from it")
    common(p)
    p.add_argument("--generator", required=True)
    p.add_argument("--discriminator", help="also load this discriminator and score samples and test images")
    p.add_argument("--png", default="load_check_samples.png", help="the sample grid ('' to skip)")
    p.set_defaults(func=cmd_load_check)

    p = sub.add_parser("trace", help="train from a latentlab trace's inputs, write PyTorch's record")
    common(p)
    p.add_argument("--inputs", required=True, help="the inputs file written by latentlab's gan_trace")
    p.add_argument("--record", required=True, help="where to write PyTorch's record")
    p.add_argument("--float64", action="store_true", help="train in float64 (the reference both float32 runs drift from)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.set_defaults(func=cmd_trace)

    args = parser.parse_args(argv)
    set_threads(args.threads, args.blas_threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
