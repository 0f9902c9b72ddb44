#!/usr/bin/python3
"""make_fid_fixture.py: writes tests/fixtures/fid_cases.safetensors, the scipy reference of
latentlab's Frechet distance (models/fid.h; tests/models/test_fid.cpp).

    /usr/bin/python3 bench/pytorch/make_fid_fixture.py      (apt-get install python3-scipy)

Each case k holds two feature sets case<k>.a (N_a, d) and case<k>.b (N_b, d) (float32) and, in the
metadata, case<k>.fid: the distance computed the way the reference implementations do,
|mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)) with numpy.cov and scipy.linalg.sqrtm (real
part), in float64 from the float32 values. The cases: Gaussian features of different means and
correlated covariances; ReLU features with dead (constant zero) dimensions; more dimensions than
samples (singular covariances); and identical sets (FID 0).
"""
import argparse
import os
import sys

import numpy as np
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import write_safetensors  # noqa: E402


def fid(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb).real
    return float(((ma - mb) ** 2).sum() + np.trace(sa + sb - 2 * root))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="tests/fixtures/fid_cases.safetensors")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    cases = []
    d = 16
    mix_a, mix_b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cases.append((rng.normal(size=(500, d)) @ mix_a, rng.normal(size=(400, d)) @ mix_b + 0.5))
    d = 64  # ReLU features, a quarter of them dead
    w = rng.normal(size=(32, d))
    w[:, : d // 4] = -np.abs(w[:, : d // 4]) * 10
    base = np.abs(rng.normal(size=(1000, 32)))
    cases.append((np.maximum(base @ w, 0), np.maximum((base + 0.3 * rng.normal(size=base.shape)) @ w, 0)))
    cases.append((rng.normal(size=(40, 48)), rng.normal(size=(30, 48)) * 2 + 1))  # N < d: singular
    same = rng.normal(size=(300, 8))
    cases.append((same, same.copy()))
    tensors, meta = {}, {}
    for k, (a, b) in enumerate(cases):
        a, b = a.astype(np.float32), b.astype(np.float32)
        tensors[f"case{k}.a"], tensors[f"case{k}.b"] = a, b
        meta[f"case{k}.fid"] = repr(fid(a, b))
        print(f"case {k}: a {a.shape}, b {b.shape}, FID {meta[f'case{k}.fid']}")
    write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
