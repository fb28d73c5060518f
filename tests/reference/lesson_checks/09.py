"""Lesson 09 (compressing BART): the energy and effective rank of a formula-built matrix, the
parameters of factorizing the tiny BART fixture's attention at rank 4 (from its config.json), and
row-wise cosines of formula-built rows, all with numpy."""
import json
import os

import numpy as np

from notebook_checks import expect

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models")


def energy():
    """The matrix the `energy` cell builds with `Array2::from_shape_fn((40, 30), ...)`."""
    x, y = np.meshgrid(np.arange(40, dtype=np.float64), np.arange(30, dtype=np.float64), indexing="ij")
    m = np.sin(0.3 * x) * np.cos(0.2 * y) + np.sin(0.05 * x * y) + 1.0 / (1.0 + x + y)
    s = np.linalg.svd(m, compute_uv=False)
    kept = np.cumsum(s**2) / np.sum(s**2)
    p = s / s.sum()
    p = p[p > 0]
    checks = [expect(rf"energy kept at rank {r}: ([\d.]+)", kept[r - 1], tolerance=2e-6)
              for r in [1, 2, 4, 8]]
    checks.append(expect(r"effective rank: ([\d.]+)", np.exp(-(p * np.log(p)).sum()), tolerance=2e-4))
    for share, label in [(0.9, "90"), (0.99, "99")]:
        rank = int(np.argmax(kept >= share - 1e-12)) + 1
        checks.append(expect(rf"rank for {label}% of the energy: (\d+)", rank))
    return checks


def plan_savings():
    with open(os.path.join(FIXTURES, "tiny-bart", "config.json")) as f:
        cfg = json.load(f)
    d, r = cfg["d_model"], 4
    # q, k, v, out of encoder self-attention and decoder self- and cross-attention, with biases.
    matrices = 4 * cfg["encoder_layers"] + 8 * cfg["decoder_layers"]
    before = matrices * (d * d + d)
    after = matrices * (r * (d + d) + d)
    return [expect(r"(\d+) layers factorized: (\d+) → (\d+) parameters \(([\d.]+)%\)",
                   matrices, before, after, 100 * after / before, tolerance=0.0051)]


def cosines():
    i, j = np.meshgrid(np.arange(4, dtype=np.float64), np.arange(5, dtype=np.float64), indexing="ij")
    a = np.sin((i * 5 + j) * 0.37)
    b = np.sin((i * 5 + j) * 0.37) + 0.3 * np.cos(i + 2 * j)
    c = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return [expect(rf"row {k}: cosine ([\d.-]+)", c[k], tolerance=2e-6) for k in range(4)]


def checks(cache):
    return {"09-compressing-bart": {"energy": energy(), "plan-savings": plan_savings(),
                                    "cosines": cosines()}}
