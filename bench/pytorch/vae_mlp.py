#!/usr/bin/python3
"""vae_mlp.py: the PyTorch twin of latentlab's MLP VAE on Fashion-MNIST (CPU).

The model is the pytorch/examples VAE (784-400-20-400-784), except that the decoder returns logits
and the reconstruction term is binary_cross_entropy_with_logits; the loss is summed over the batch,
as pytorch/examples backpropagates it. Parameter names (fc1, fc21, fc22, fc3, fc4 .weight/.bias) are
the ones latentlab writes, so a latentlab checkpoint loads with load_state_dict(strict=True).

Needs Debian's PyTorch for the system interpreter (apt-get install python3-torch python3-numpy):

    /usr/bin/python3 bench/pytorch/vae_mlp.py train --epochs 10 --batch-size 128 --lr 1e-3 \
        --seed 1 --threads 2 --out results.json
    /usr/bin/python3 bench/pytorch/vae_mlp.py bench --steps 50 --warmup 5 --batch-size 128 \
        --threads 2 [--repeats 5] [--json [FILE]]
    /usr/bin/python3 bench/pytorch/vae_mlp.py load-check --checkpoint model.safetensors

train:      Adam(lr), shuffled training set, images x/255 flattened to 784, one line per epoch
            (train loss/img, test loss/img with its recon and KL parts, seconds, img/s); --out
            writes the per-epoch metrics, the final test loss per image and the environment as JSON.
bench:      times whole training steps (forward, backward, Adam step) on real Fashion-MNIST batches;
            `repeats` runs of `steps` steps after `warmup` steps; prints the median img/s, and with
            --json prints (or writes to FILE) a JSON object.
load-check: reads a safetensors checkpoint with the pure-numpy reader (safetensors_np.py), loads it
            with strict=True and prints the test loss per image (one sampled z per image, --seed).

Test loss per image is computed as pytorch/examples does: model.eval(), torch.no_grad(), one
sampled z per test image (reparameterize samples in eval too), the per-batch summed losses added up
and divided by 10000. Train loss per image for an epoch is the sum of the batch losses / 60000.
"""
import argparse
import datetime
import gzip
import json
import os
import platform
import statistics
import struct
import sys
import time

# Debian's torch runs its own ops on an OpenMP pool (torch.set_num_threads) but its matrix products
# on OpenBLAS's separate pthread pool (BLAS_INFO=generic -> libblas.so.3 -> openblas-pthread),
# sized to all cores whatever torch.set_num_threads says. With OpenMP's default active waiting the
# two pools fight over the cores: measured here, 2 threads ran at ~9-12k img/s against ~23k with
# passive waiting and both pools sized to --threads. So OpenMP waits passively (unless the caller
# chose a policy; libgomp reads it when torch loads it, hence before the import) and
# set_threads() sizes both pools.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import ctypes  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_DIM = 784
HIDDEN_DIM = 400
LATENT_DIM = 20


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IMAGE_DIM, HIDDEN_DIM)
        self.fc21 = nn.Linear(HIDDEN_DIM, LATENT_DIM)
        self.fc22 = nn.Linear(HIDDEN_DIM, LATENT_DIM)
        self.fc3 = nn.Linear(LATENT_DIM, HIDDEN_DIM)
        self.fc4 = nn.Linear(HIDDEN_DIM, IMAGE_DIM)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    @staticmethod
    def reparameterize(mu, logvar, eps=None):
        # Samples in eval mode too, as pytorch/examples does.
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # logits

    def forward(self, x, eps=None):
        mu, logvar = self.encode(x.view(-1, IMAGE_DIM))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(logits, x, mu, logvar, beta=1.0):
    """(loss, recon, kl), each summed over the batch."""
    recon = F.binary_cross_entropy_with_logits(logits, x.view(-1, IMAGE_DIM), reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon + beta * kl, recon, kl


# ---- data ------------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (gzip-compressed or not) as a uint8 numpy array, validated against its header."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    if not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: bad dimension count {ndim}")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    body = data[4 + 4 * ndim:]
    if len(body) != count:
        raise ValueError(f"{path}: header promises {count} bytes of data, file has {len(body)}")
    return np.frombuffer(body, np.uint8).reshape(dims)


def load_fashion_mnist(split, data_dir=DATA_DIR):
    """(images as float32 (N, 784) in [0, 1], labels as int64 (N,)); split is 'train' or 't10k'."""
    images = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise ValueError(f"{split}: unexpected shapes {images.shape}, {labels.shape}")
    x = torch.from_numpy(images.reshape(-1, IMAGE_DIM).astype(np.float32) / np.float32(255.0))
    return x, torch.from_numpy(labels.astype(np.int64))



def image_batches(batch_size, count, table, split="train", data_dir=DATA_DIR):
    """`count` batches (batch_size, 1, 28, 28) of float32 images table[byte], drawn by one
    torch.randperm over the whole split (the seeded global generator) as a bench's fixed batches;
    only those batches are kept: the split's bytes (47 MB for Fashion-MNIST's training set) are let
    go, as latentlab's bench_models does, so that a peak-RSS comparison holds the same data."""
    raw = read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    if raw.ndim != 3 or raw.shape[1:] != (28, 28):
        raise ValueError(f"{split}: unexpected image shape {raw.shape}")
    n = raw.shape[0]
    perm = torch.randperm(n).numpy()
    count = min(count, max(1, n // batch_size))
    table = np.asarray(table, dtype=np.float32)
    batches = [torch.from_numpy(table[raw[perm[i * batch_size:(i + 1) * batch_size]]].reshape(-1, 1, 28, 28))
               for i in range(count)]
    del raw
    return batches

# ---- training and evaluation -----------------------------------------------------------------

def train_epoch(model, optimizer, x_train, batch_size, beta=1.0):
    model.train()
    n = x_train.shape[0]
    perm = torch.randperm(n)  # shuffled every epoch, from the seeded global generator
    total = 0.0
    for start in range(0, n, batch_size):  # the last batch is partial, as DataLoader's default
        x = x_train[perm[start:start + batch_size]]
        optimizer.zero_grad()
        logits, mu, logvar = model(x)
        loss, _, _ = loss_function(logits, x, mu, logvar, beta)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / n


@torch.no_grad()
def evaluate(model, x_test, batch_size, beta=1.0):
    """(loss, recon, kl) per test image, one sampled z per image."""
    model.eval()
    loss_sum = recon_sum = kl_sum = 0.0
    for start in range(0, x_test.shape[0], batch_size):
        x = x_test[start:start + batch_size]
        logits, mu, logvar = model(x)
        loss, recon, kl = loss_function(logits, x, mu, logvar, beta)
        loss_sum += loss.item()
        recon_sum += recon.item()
        kl_sum += kl.item()
    n = x_test.shape[0]
    return loss_sum / n, recon_sum / n, kl_sum / n


def _openblas():
    """The OpenBLAS that torch's BLAS calls reach, or None (another BLAS, or none loaded)."""
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        except OSError:
            continue
        if hasattr(lib, "openblas_set_num_threads"):
            return lib
    return None


def set_threads(threads, blas_threads=None):
    """Sizes torch's intra-op pool to `threads` and OpenBLAS's to `blas_threads` (or `threads`)."""
    torch.set_num_threads(threads)
    lib = _openblas()
    if lib is not None:
        lib.openblas_set_num_threads(ctypes.c_int(blas_threads or threads))


def blas_info():
    lib = _openblas()
    if lib is None:
        return {"blas": "not OpenBLAS (threads not set by this script)"}
    lib.openblas_get_config.restype = ctypes.c_char_p
    return {"blas": lib.openblas_get_config().decode(),
            "blas_threads": lib.openblas_get_num_threads()}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(threads):
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        **blas_info(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": "cpu",
    }


def time_steps(step, batch_size, warmup, steps, repeats):
    """The benches' timing: `warmup` untimed calls of step(), then `repeats` timed runs of `steps`
    calls each; returns each run's images per second. step() returns the step's loss, read once per
    run (CPU ops are synchronous; the read makes sure nothing is pending)."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()
        seconds = time.perf_counter() - t0
        rates.append(steps * batch_size / seconds)
    return rates


def write_json(result, where):
    """Prints the result as JSON (where == "-") or writes it to the file `where`."""
    text = json.dumps(result, indent=2)
    if where == "-":
        print(text)
    else:
        with open(where, "w") as f:
            f.write(text + "\n")
        print(f"wrote {where}")


def cmd_train(args):
    torch.manual_seed(args.seed)
    x_train, _ = load_fashion_mnist("train")
    x_test, _ = load_fashion_mnist("t10k")
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    epochs = []
    start_all = time.perf_counter()
    print(f"{'epoch':>5} {'train/img':>10} {'test/img':>10} {'recon':>10} {'kl':>8} "
          f"{'seconds':>8} {'img/s':>8}", flush=True)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        train_loss = train_epoch(model, optimizer, x_train, args.batch_size, args.beta)
        seconds = time.perf_counter() - t0
        test_loss, test_recon, test_kl = evaluate(model, x_test, args.batch_size, args.beta)
        row = {"epoch": epoch, "train_loss_per_image": train_loss,
               "test_loss_per_image": test_loss, "test_recon_per_image": test_recon,
               "test_kl_per_image": test_kl, "train_seconds": seconds,
               "train_images_per_second": x_train.shape[0] / seconds}
        epochs.append(row)
        print(f"{epoch:5d} {train_loss:10.3f} {test_loss:10.3f} {test_recon:10.3f} {test_kl:8.3f} "
              f"{seconds:8.2f} {row['train_images_per_second']:8.0f}", flush=True)
    total_seconds = time.perf_counter() - start_all
    result = {
        "model": "vae_mlp (784-400-20-400-784, logits, BCE-with-logits + beta*KL, summed)",
        "dataset": "fashion-mnist",
        "recipe": {"optimizer": "Adam", "lr": args.lr, "betas": [0.9, 0.999], "eps": 1e-8,
                   "batch_size": args.batch_size, "epochs": args.epochs, "beta": args.beta,
                   "seed": args.seed, "shuffle": True, "drop_last": False,
                   "input": "x/255, flattened to 784",
                   "test_loss": "eval mode, no_grad, one sampled z per test image, "
                                "sum of batch losses / 10000"},
        "epochs": epochs,
        "final_test_loss_per_image": epochs[-1]["test_loss_per_image"] if epochs else None,
        "final_test_recon_per_image": epochs[-1]["test_recon_per_image"] if epochs else None,
        "final_test_kl_per_image": epochs[-1]["test_kl_per_image"] if epochs else None,
        "total_seconds": total_seconds,
        "environment": environment(args.threads),
    }
    if args.note:
        result["note"] = args.note
    print(f"final test loss per image {result['final_test_loss_per_image']:.4f} "
          f"({total_seconds:.1f} s in all)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")
    return 0


def cmd_bench(args):
    torch.manual_seed(args.seed)
    x_train, _ = load_fashion_mnist("train")
    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = x_train.shape[0]
    # Real batches, gathered beforehand so that the timing is of the training step alone.
    perm = torch.randperm(n)
    count = max(1, n // args.batch_size)
    batches = [x_train[perm[i * args.batch_size:(i + 1) * args.batch_size]].contiguous()
               for i in range(count)]
    model.train()
    step_index = 0

    def step():
        nonlocal step_index
        x = batches[step_index % count]
        step_index += 1
        optimizer.zero_grad()
        logits, mu, logvar = model(x)
        loss, _, _ = loss_function(logits, x, mu, logvar)
        loss.backward()
        optimizer.step()
        return loss

    rates = time_steps(step, args.batch_size, args.warmup, args.steps, args.repeats)
    median = statistics.median(rates)
    print(f"pytorch vae_mlp train step: batch {args.batch_size}, {args.steps} steps x "
          f"{args.repeats} repeats, {args.threads} threads (BLAS {args.blas_threads or args.threads}): median {median:.0f} img/s "
          f"({1e3 * args.batch_size / median:.2f} ms/step; best {max(rates):.0f}; runs "
          f"{', '.join(f'{r:.0f}' for r in rates)})", flush=True)
    if args.json is not None:
        result = {"benchmark": "vae_mlp_train_step", "framework": "pytorch",
                  "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
                  "repeats": args.repeats, "images_per_second": median,
                  "images_per_second_best": max(rates),
                  "images_per_second_runs": rates,
                  "ms_per_step": 1e3 * args.batch_size / median,
                  "environment": environment(args.threads)}
        write_json(result, args.json)
    return 0


def cmd_load_check(args):
    arrays, metadata = read_safetensors(args.checkpoint)
    state = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
    model = VAE()
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tensor.dtype != expected[name].dtype:
            state[name] = tensor.to(expected[name].dtype)
    model.load_state_dict(state, strict=True)  # raises on a missing, extra or mis-shaped tensor
    print(f"loaded {len(state)} tensors from {args.checkpoint} with strict=True")
    for key, value in metadata.items():
        shown = value if len(value) <= 200 else value[:200] + "..."
        print(f"  metadata {key}: {shown}")
    torch.manual_seed(args.seed)
    x_test, _ = load_fashion_mnist("t10k")
    loss, recon, kl = evaluate(model, x_test, args.batch_size)
    print(f"test loss per image {loss:.4f} (recon {recon:.4f}, kl {kl:.4f})")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--batch-size", type=int, default=128)
        p.add_argument("--threads", type=int, default=2,
                       help="torch.set_num_threads and OpenBLAS's thread count")
        p.add_argument("--blas-threads", type=int, default=None,
                       help="OpenBLAS's thread count when it should differ from --threads")
        p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("train", help="train with the recipe and report per-epoch losses")
    common(p)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument("--note", help="free text stored in the JSON (e.g. the machine's load)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="time training steps, report img/s")
    common(p)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="emit the result as JSON on stdout, or into FILE")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("load-check", help="load a latentlab safetensors checkpoint, print test loss")
    common(p)
    p.add_argument("--checkpoint", required=True)
    p.set_defaults(func=cmd_load_check)

    args = parser.parse_args(argv)
    set_threads(args.threads, args.blas_threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
