#!/usr/bin/python3
"""make_vae_fixture.py: writes tests/fixtures/vae_mlp_step.safetensors, the PyTorch reference for
latentlab's MLP VAE parity test (one forward, one backward, one Adam step).

Regenerate it from the repository root with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 bench/pytorch/make_vae_fixture.py            # default --out below
    /usr/bin/python3 bench/pytorch/safetensors_np.py tests/fixtures/vae_mlp_step.safetensors

The result depends on the PyTorch version (its default init and RNG) but is deterministic for a
given version: one thread, seed 0. Regenerating overwrites the file; commit it only on purpose.

What it holds (all F32; the model is vae_mlp.VAE: fc1 784->400, fc21/fc22 400->20, fc3 20->400,
fc4 400->784 logits):

    fc1.weight ... fc4.bias    the initial weights: torch.manual_seed(0), then VAE() (PyTorch's
                               default Linear init, modules created in the order fc1 fc21 fc22 fc3 fc4)
    x                          (32, 784) the first 32 Fashion-MNIST *test* images, uint8 / 255
    eps                        (32, 20) torch.randn(32, 20), drawn right after the init
    out.mu, out.logvar         (32, 20) the encoder's outputs
    out.z                      (32, 20) mu + exp(0.5 logvar) * eps
    out.logits                 (32, 784) the decoder's output
    out.loss, out.recon, out.kl   shape [] scalars, summed over the batch:
                               recon = binary_cross_entropy_with_logits(logits, x, reduction='sum')
                               kl = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)); loss = recon + 1.0 kl
    grad.<param>               d loss / d param for every parameter
    step1.<param>              every parameter after one Adam step (lr 1e-3, betas (0.9, 0.999),
                               eps 1e-8, no weight decay) from the initial weights with those grads
    f64.out.loss/recon/kl      the same forward computed in float64 from the same float32 weights,
                               x and eps, stored as F32 (the rounding of the float64 result)
    f64.grad.<param>           float64 gradients, stored as F32 -- only for fc21, fc22 and fc3
                               (weights and biases) and fc1.bias, fc4.bias: the float64 copies of
                               fc1.weight and fc4.weight (314k values each) would add 2.5 MB to a
                               file that is already ~8 MB, so they are left out (--f64-large keeps
                               them). Compare those two against grad.* with a float32 tolerance.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402
from vae_mlp import VAE, load_fashion_mnist, loss_function  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "vae_mlp_step.safetensors")
BATCH = 32
SEED = 0
LR = 1e-3
LARGE = ("fc1.weight", "fc4.weight")  # whose float64 gradients are left out by default

RECIPE = ("torch.set_num_threads(1); torch.manual_seed(0); model = VAE() (default init); "
          "eps = torch.randn(32, 20); x = first 32 Fashion-MNIST t10k images / 255 (float32); "
          "logits, mu, logvar = model(x, eps) with z = mu + exp(0.5*logvar)*eps; "
          "loss = BCE-with-logits(logits, x, sum) + 1.0 * (-0.5 * sum(1 + logvar - mu^2 - exp(logvar))); "
          "loss.backward(); torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8).step(); "
          "f64.* = the same forward/backward in float64 from the same float32 weights, x and eps")


def numpy32(t):
    return t.detach().to(torch.float32).cpu().numpy().copy()


def forward_backward(model, x, eps):
    model.zero_grad(set_to_none=True)
    mu, logvar = model.encode(x)
    z = model.reparameterize(mu, logvar, eps)
    logits = model.decode(z)
    loss, recon, kl = loss_function(logits, x, mu, logvar, beta=1.0)
    loss.backward()
    return {"mu": mu, "logvar": logvar, "z": z, "logits": logits,
            "loss": loss, "recon": recon, "kl": kl}


def main(argv=None):
    parser = argparse.ArgumentParser(description="write the VAE parity fixture")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--f64-large", action="store_true",
                        help="also store the float64 gradients of fc1.weight and fc4.weight")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run
    torch.manual_seed(SEED)
    model = VAE()
    eps = torch.randn(BATCH, 20)
    x_test, _ = load_fashion_mnist("t10k")
    x = x_test[:BATCH].clone()
    model64 = copy.deepcopy(model).double()  # before any update: the same initial weights

    tensors = {}
    for name, p in model.named_parameters():
        tensors[name] = numpy32(p)
    tensors["x"] = numpy32(x)
    tensors["eps"] = numpy32(eps)

    out = forward_backward(model, x, eps)
    for key, value in out.items():
        tensors[f"out.{key}"] = numpy32(value)
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = numpy32(p.grad)

    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
    optimizer.step()
    for name, p in model.named_parameters():
        tensors[f"step1.{name}"] = numpy32(p)

    out64 = forward_backward(model64, x.double(), eps.double())
    for key in ("loss", "recon", "kl"):
        tensors[f"f64.out.{key}"] = numpy32(out64[key])
    kept = []
    for name, p in model64.named_parameters():
        if name in LARGE and not args.f64_large:
            continue
        tensors[f"f64.grad.{name}"] = numpy32(p.grad)
        kept.append(name)

    metadata = {
        "generator": "bench/pytorch/make_vae_fixture.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "recipe": RECIPE,
        "f64_grads": ",".join(kept),
        "f64.out.loss_exact": repr(out64["loss"].item()),  # the float64 value before rounding
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    size = write_safetensors(args.out, tensors, metadata)

    # Read it back with the strict reader and compare every tensor bit for bit.
    back, meta = read_safetensors(args.out)
    assert meta == metadata and set(back) == set(tensors)
    for name, value in tensors.items():
        assert back[name].dtype == np.float32 and back[name].shape == value.shape, name
        assert np.array_equal(back[name], value), name

    print(f"wrote {args.out}: {len(tensors)} tensors, {size} bytes ({size / 2**20:.2f} MiB)")
    print(f"loss {out['loss'].item():.6f} (recon {out['recon'].item():.6f}, kl {out['kl'].item():.6f}); "
          f"float64 loss {out64['loss'].item():.9f}")
    worst = max(float(np.max(np.abs(numpy32(model.get_parameter(n).grad) -
                                    numpy32(model64.get_parameter(n).grad))))
                for n, _ in model.named_parameters())
    print(f"largest |grad f32 - grad f64| over all parameters: {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
