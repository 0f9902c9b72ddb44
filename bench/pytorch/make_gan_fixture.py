#!/usr/bin/python3
"""make_gan_fixture.py: writes tests/fixtures/dcgan28_step.safetensors, the PyTorch reference for
latentlab's DCGAN-28 parity test (tests/models/test_gan_parity.cpp): one whole GAN step,
models::gan_train_step's, with every intermediate a test needs to locate a difference.

Regenerate it from the repository root with Debian's PyTorch (apt-get install python3-torch):

    /usr/bin/python3 bench/pytorch/make_gan_fixture.py            # default --out below
    /usr/bin/python3 bench/pytorch/safetensors_np.py tests/fixtures/dcgan28_step.safetensors

Deterministic for a given torch version (one thread, seed 0); regenerating overwrites the file,
commit it only on purpose.

The model is dcgan28.py's (models/gan.h's dcgan28) with ngf = ndf = 16, nz = 100, one channel, so
that the file stays small (~2 MB). Recipe, in this order:

    torch.set_num_threads(1); torch.manual_seed(0)
    G = Generator(100, 16, 1); D = Discriminator(16, 1); G.apply(weights_init); D.apply(weights_init)
    z = torch.randn(16, 100)                   (drawn right after the init)
    x = the first 16 Fashion-MNIST t10k images, v / 127.5 - 1 in float32
    Adam(lr 2e-4, betas (0.5, 0.999), eps 1e-8) for each net; both nets in train mode
    D phase: logits_real = D(x); loss_d_real = BCEwL(logits_real, 1); backward
             fake = G(z); logits_fake = D(fake.detach()); loss_d_fake = BCEwL(logits_fake, 0); backward
             D step
    G phase: logits_fake_after = D(fake) (the updated D); loss_g = BCEwL(logits_fake_after, 1);
             backward; G step
    (BCEwL = binary_cross_entropy_with_logits, mean over the 16 images.)

What it holds (F32, except the BatchNorm counters num_batches_tracked, I64 as PyTorch keeps them):

    G.<name>, D.<name>          the initial state_dicts: parameters and BatchNorm buffers
                                (G: main.0.weight, main.1.{weight,bias,running_mean,running_var,
                                num_batches_tracked}, main.3.weight, main.4.*, main.6.weight;
                                D: main.0.weight, main.2.weight, main.3.*, main.5.weight)
    x                           (16, 1, 28, 28) the real images
    z                           (16, 100) the noise
    logits_real, logits_fake    (16) D's logits on x and on G(z), before D's update
    loss_d_real, loss_d_fake    [] the two D losses
    fake                        (16, 1, 28, 28) G(z), G's output in train mode (batch statistics)
    gradD.<param>               D's gradients after both D backward passes (real + fake)
    stepD.<param>               D's parameters after D's Adam step
    bnD.<buffer>                D's BatchNorm buffers after the D phase: two training-mode runs
                                (real, then fake), num_batches_tracked = 2
    logits_fake_after           (16) the updated D's logits on G(z), in the G phase
    loss_g                      [] G's loss
    gradG.<param>               G's gradients from loss_g
    stepG.<param>               G's parameters after G's Adam step
    final.G.<buffer>            G's BatchNorm buffers at the end: one run (num_batches_tracked = 1)
    final.D.<buffer>            D's BatchNorm buffers at the end: three runs (real, fake, fake
                                again in the G phase; num_batches_tracked = 3)

Running statistics are PyTorch's: momentum 0.1, running_var updated with the unbiased batch
variance (over N*H*W values per channel). No float64 reference is stored: every quantity after
D's Adam step depends on D's first-step move lr * g / (|g| + eps), which a float64 run would not
reproduce for gradients near zero, so the float32 values are the reference.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# dcgan28 sets OMP_WAIT_POLICY before torch loads only if imported first; here one thread is used,
# so the policy does not matter.
from dcgan28 import Discriminator, Generator, load_images, make_optimizers, weights_init  # noqa: E402
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "dcgan28_step.safetensors")
BATCH, NZ, NGF, NDF, SEED, LR = 16, 100, 16, 16, 0, 2e-4

RECIPE = ("torch.set_num_threads(1); torch.manual_seed(0); G = Generator(nz=100, ngf=16, C=1); "
          "D = Discriminator(ndf=16, C=1); G.apply(weights_init); D.apply(weights_init) (conv ~ N(0, .02), "
          "BN weight ~ N(1, .02), BN bias 0); z = torch.randn(16, 100); x = first 16 Fashion-MNIST t10k "
          "images / 127.5 - 1 (float32); Adam(lr=2e-4, betas=(0.5, 0.999), eps=1e-8) for G and for D; "
          "train mode; D: zero_grad, BCEwL(D(x), 1).backward(), fake = G(z), BCEwL(D(fake.detach()), 0)"
          ".backward(), D step; G: zero_grad, BCEwL(D(fake), 1).backward() through the updated D, G step")


def np_state(module, prefix):
    """A module's state_dict with `prefix`: F32 arrays, num_batches_tracked as I64."""
    out = {}
    for name, t in module.state_dict().items():
        a = t.detach().cpu().numpy().copy()
        out[prefix + name] = a.astype(np.int64) if name.endswith("num_batches_tracked") else a.astype(np.float32)
    return out


def np_buffers(module, prefix):
    return {k: v for k, v in np_state(module, prefix).items()
            if k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")}


def np32(t):
    return t.detach().to(torch.float32).cpu().numpy().copy()


def main(argv=None):
    parser = argparse.ArgumentParser(description="write the DCGAN-28 parity fixture")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run
    torch.manual_seed(SEED)
    g = Generator(NZ, NGF, 1)
    d = Discriminator(NDF, 1)
    g.apply(weights_init)
    d.apply(weights_init)
    z = torch.randn(BATCH, NZ)
    x = load_images("t10k")[:BATCH].clone()
    g.train()
    d.train()
    opt_g, opt_d = make_optimizers(g, d, LR)

    tensors = {}
    tensors.update(np_state(g, "G."))
    tensors.update(np_state(d, "D."))
    tensors["x"] = np32(x)
    tensors["z"] = np32(z)

    # The step written out (not dcgan28.gan_step) so that the intermediates can be read between the
    # phases; the order is the same.
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)
    opt_d.zero_grad(set_to_none=True)
    logits_real = d(x)
    loss_d_real = F.binary_cross_entropy_with_logits(logits_real, ones)
    loss_d_real.backward()
    fake = g(z)
    logits_fake = d(fake.detach())
    loss_d_fake = F.binary_cross_entropy_with_logits(logits_fake, zeros)
    loss_d_fake.backward()
    for name, p in d.named_parameters():
        tensors[f"gradD.{name}"] = np32(p.grad)
    opt_d.step()
    for name, p in d.named_parameters():
        tensors[f"stepD.{name}"] = np32(p)
    tensors.update(np_buffers(d, "bnD."))

    opt_g.zero_grad(set_to_none=True)
    logits_fake_after = d(fake)
    loss_g = F.binary_cross_entropy_with_logits(logits_fake_after, ones)
    loss_g.backward()
    for name, p in g.named_parameters():
        tensors[f"gradG.{name}"] = np32(p.grad)
    opt_g.step()
    for name, p in g.named_parameters():
        tensors[f"stepG.{name}"] = np32(p)
    tensors.update(np_buffers(g, "final.G."))
    tensors.update(np_buffers(d, "final.D."))

    for name, value in (("logits_real", logits_real), ("logits_fake", logits_fake),
                        ("loss_d_real", loss_d_real), ("loss_d_fake", loss_d_fake), ("fake", fake),
                        ("logits_fake_after", logits_fake_after), ("loss_g", loss_g)):
        tensors[name] = np32(value)

    metadata = {
        "generator": "bench/pytorch/make_gan_fixture.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "config": '{"arch":"dcgan28","channels":1,"nz":100,"ngf":16,"ndf":16}',
        "recipe": RECIPE,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    size = write_safetensors(args.out, tensors, metadata)

    # Read it back with the strict reader and compare every tensor bit for bit.
    back, meta = read_safetensors(args.out)
    assert meta == metadata and set(back) == set(tensors)
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
        assert np.array_equal(back[name], value), name

    print(f"wrote {args.out}: {len(tensors)} tensors, {size} bytes ({size / 2**20:.2f} MiB)")
    print(f"loss_d_real {loss_d_real.item():.7f}, loss_d_fake {loss_d_fake.item():.7f}, "
          f"loss_g {loss_g.item():.7f}")
    print(f"D BN running_var[0]: initial 1, after D phase {tensors['bnD.main.3.running_var'][0]:.7f}, "
          f"final {tensors['final.D.main.3.running_var'][0]:.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
