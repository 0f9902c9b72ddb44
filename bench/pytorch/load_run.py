#!/usr/bin/python3
"""load_run.py: a latentlab run directory in PyTorch.

    /usr/bin/python3 bench/pytorch/load_run.py RUN [--code-norms I,J]

Reads the model's configuration from the checkpoint's metadata ("config"), builds the same model in
PyTorch (the classes below and in dcgan28.py / cgan28.py, with latentlab's parameter names), loads
the checkpoint with load_state_dict(strict=True) (a missing, extra or mis-shaped tensor raises), runs
a forward pass and prints one JSON line. Models: ae and vae (mlp and conv), dcgan28 and cgan28.

--code-norms I,J: the norms of the mean codes mu(x) of test images I and J of the run's data set
(Fashion-MNIST from Debian's package only) and their distance, the numbers `latentlab interpolate
RUN --from idx:I --to idx:J` prints as from.norm, to.norm and distance: a check that the encoder
computes what latentlab's does, not only that the names fit.

In your own code, the same in a few lines (docs/checkpoints.md, "Loading a run in PyTorch"):

    import json, torch
    from safetensors_np import read_safetensors          # or safetensors.torch.load_file
    arrays, meta = read_safetensors("runs/vae/model.safetensors")
    model = AutoencoderTwin(json.loads(meta["config"]))   # this file
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, strict=True)
"""
import argparse
import gzip
import json
import math
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402


class AutoencoderTwin(nn.Module):
    """models/vae.h's Autoencoder for a VaeConfig (the "config" metadata of model.safetensors):
    mlp: fc1 (pixels -> hidden), fc21 (mu) and, for a VAE, fc22 (logvar), fc3, fc4 (logits);
    conv: encoder (Conv 4x4/2 LReLU(0.2) Conv 4x4/2 LReLU(0.2) Flatten), fc_mu, fc_logvar (VAE),
    fc_dec, decoder (ReLU Unflatten ConvT 4x4/2 LReLU(0.2) ConvT 4x4/2), logits out."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        c, h, w = int(config["channels"]), int(config["height"]), int(config["width"])
        d = int(config["latent_dim"])
        self.variational = config["model"] == "vae"
        if config["arch"] == "mlp":
            hidden = int(config["hidden"])
            self.fc1 = nn.Linear(c * h * w, hidden)
            self.fc21 = nn.Linear(hidden, d)
            if self.variational:
                self.fc22 = nn.Linear(hidden, d)
            self.fc3 = nn.Linear(d, hidden)
            self.fc4 = nn.Linear(hidden, c * h * w)
        else:
            k = int(config["conv_channels"])
            features = 2 * k * (h // 4) * (w // 4)
            self.encoder = nn.Sequential(nn.Conv2d(c, k, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(k, 2 * k, 4, 2, 1),
                                         nn.LeakyReLU(0.2), nn.Flatten())
            self.fc_mu = nn.Linear(features, d)
            if self.variational:
                self.fc_logvar = nn.Linear(features, d)
            self.fc_dec = nn.Linear(d, features)
            self.decoder = nn.Sequential(nn.ReLU(), nn.Unflatten(1, (2 * k, h // 4, w // 4)),
                                         nn.ConvTranspose2d(2 * k, k, 4, 2, 1), nn.LeakyReLU(0.2),
                                         nn.ConvTranspose2d(k, c, 4, 2, 1))

    def encode(self, x):
        """x: (N, C, H, W) in [0, 1] -> mu, logvar (None for an autoencoder)."""
        if self.config["arch"] == "mlp":
            hidden = F.relu(self.fc1(x.flatten(1)))
            return self.fc21(hidden), self.fc22(hidden) if self.variational else None
        f = self.encoder(x)
        return self.fc_mu(f), self.fc_logvar(f) if self.variational else None

    def decode(self, z):
        """z: (N, D) -> logits (N, C, H, W); sigmoid gives the image."""
        c, h, w = int(self.config["channels"]), int(self.config["height"]), int(self.config["width"])
        if self.config["arch"] == "mlp":
            return self.fc4(F.relu(self.fc3(z))).view(-1, c, h, w)
        return self.decoder(self.fc_dec(z))


def state_of(path):
    arrays, metadata = read_safetensors(path)
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}, metadata


def load_strict(module, state):
    expected = module.state_dict()
    state = {k: (v.to(expected[k].dtype) if k in expected else v) for k, v in state.items()}
    module.load_state_dict(state, strict=True)  # raises on a missing, extra or mis-shaped tensor
    return len(state)


def fashion_test_images():
    path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, 28, 28).astype(np.float32) / 255.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--code-norms", help="I,J: test images whose mean codes to measure")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    report = {"run": args.run}
    model_path = os.path.join(args.run, "model.safetensors")
    gen_path = os.path.join(args.run, "generator.safetensors")
    with torch.no_grad():
        if os.path.exists(model_path):
            state, meta = state_of(model_path)
            config = json.loads(meta["config"])
            model = AutoencoderTwin(config).eval()
            report.update(model=f'{config["model"]} {config["arch"]}', tensors=load_strict(model, state))
            z = torch.randn(4, int(config["latent_dim"]))
            images = torch.sigmoid(model.decode(z))
            mu, _ = model.encode(images)
            report.update(decoded=list(images.shape), finite=bool(torch.isfinite(images).all() and torch.isfinite(mu).all()))
            if args.code_norms:
                i, j = (int(v) for v in args.code_norms.split(","))
                x = torch.from_numpy(fashion_test_images()[[i, j]])
                mu, _ = model.encode(x)
                report.update(from_norm=round(float(mu[0].norm()), 4), to_norm=round(float(mu[1].norm()), 4),
                              distance=round(float((mu[0] - mu[1]).norm()), 4))
        elif os.path.exists(gen_path):
            state, meta = state_of(gen_path)
            config = json.loads(meta["config"])
            d_state, _ = state_of(os.path.join(args.run, "discriminator.safetensors"))
            nz, ngf, ndf, c = (int(config[k]) for k in ("nz", "ngf", "ndf", "channels"))
            if config["arch"] == "dcgan28":
                from dcgan28 import Discriminator, Generator
                g, d = Generator(nz, ngf, c), Discriminator(ndf, c)
                labels = ()
            elif config["arch"] == "cgan28":
                from cgan28 import CondDiscriminator, CondGenerator
                k = int(config["num_classes"])
                g, d = CondGenerator(nz, ngf, c, k), CondDiscriminator(ndf, c, k)
                labels = (torch.arange(4) % k,)
            else:
                raise SystemExit(f"{gen_path}: arch {config['arch']}: this script has twins of dcgan28 and cgan28")
            report.update(model=config["arch"], tensors=load_strict(g, state) + load_strict(d, d_state))
            g.eval()
            d.eval()
            images = g(torch.randn(4, nz), *labels)
            logits = d(images, *labels)
            report.update(decoded=list(images.shape),
                          finite=bool(torch.isfinite(images).all() and torch.isfinite(logits).all()),
                          in_range=bool(images.abs().max() <= 1.0))
        else:
            raise SystemExit(f"{args.run}: no model.safetensors or generator.safetensors")
    if not report["finite"] or (isinstance(report.get("distance"), float) and math.isnan(report["distance"])):
        raise SystemExit(f"non-finite outputs: {report}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
