#!/usr/bin/python3
"""make_trace_fixture.py: writes tests/fixtures/dcgan28_trace.safetensors, the PyTorch reference of
latentlab's trajectory test (tests/models/test_gan_trace.cpp): 200 whole training steps of DCGAN-28
(ngf = ndf = 32, batch 64) from the same initial weights, images and noise on both sides
(models/gan_trace.h).

Run from the repository root after building (it runs build/bench/gan_trace for the inputs):

    /usr/bin/python3 bench/pytorch/make_trace_fixture.py [--build build] [--out tests/fixtures/dcgan28_trace.safetensors]

It writes the inputs with latentlab's gan_trace (seed 1: train_gan's initialization, shuffle and
noise), trains PyTorch from them twice, in float32 (one thread) and in float64, and keeps:

    f32.<series>, f64.<series>   (steps) loss_d, loss_g, d_real, d_fake, d_fake_after, d_accuracy
    f32.bn.*, f64.bn.*           (steps, C) the BatchNorm running statistics after every step
    f32.final.G.<name>           PyTorch's float32 generator after the last step
    f32.eval_fake                (16, 1, 28, 28) that generator in eval mode on the inputs' fixed_z
    metadata: steps, batch_size, seed, ngf, ndf, torch, and input_checksum.<name>: a weighted sum
              (sum of v[i] * (i % 7 + 1), float64) of each input tensor, so the test knows that
              latentlab still makes the same inputs

Why float64 too: two float32 implementations of a GAN drift apart whatever their quality (a
gradient of 1e-8 whose rounding flips its sign moves Adam's first step by a whole lr), and the drift
grows chaotically; the float64 run is the trajectory both float32 runs approximate, so the test can
ask latentlab to stay as close to it as PyTorch's float32 does.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402

SPEC = {"steps": 200, "batch_size": 64, "seed": 1, "ngf": 32, "ndf": 32}


def checksum(a):
    v = np.asarray(a, np.float64).ravel()
    return float(np.sum(v * (np.arange(v.size) % 7 + 1)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--out", default="tests/fixtures/dcgan28_trace.safetensors")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.safetensors")
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in SPEC.items()]
        subprocess.run([os.path.join(args.build, "bench", "gan_trace"), *flags, "--inputs", inputs,
                        "--record", os.path.join(tmp, "latentlab.safetensors")], check=True)
        records = {}
        for name, extra in (("f32", []), ("f64", ["--float64"])):
            path = os.path.join(tmp, f"{name}.safetensors")
            subprocess.run([sys.executable, os.path.join(HERE, "dcgan28.py"), "trace", "--threads", "1",
                            "--inputs", inputs, "--record", path, *extra], check=True)
            records[name], meta = read_safetensors(path)
        ins, _ = read_safetensors(inputs)
    out = {}
    for name, rec in records.items():
        for k, v in rec.items():
            if k.startswith("final.D.") or (k.startswith("final.G.") and name != "f32"):
                continue
            if k == "eval_fake" and name != "f32":
                continue
            out[f"{name}.{k}"] = v
    metadata = {k: str(v) for k, v in SPEC.items()}
    metadata["torch"] = meta.get("torch", "")
    for k, v in sorted(ins.items()):
        metadata[f"input_checksum.{k}"] = repr(checksum(v))
    write_safetensors(args.out, out, metadata)
    print(f"wrote {args.out}: {len(out)} tensors")


if __name__ == "__main__":
    main()
