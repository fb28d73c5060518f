"""Lesson 05 (attention): scaled dot-product attention of formula-made Q, K, V, with and without a
causal mask, and the FLOP and memory counts of a self-attention block, recomputed with numpy."""
import numpy as np

from notebook_checks import expect


def inputs():
    q = np.sin(np.arange(40, dtype=np.float64).reshape(5, 8) * 0.37)
    k = np.cos(np.arange(40, dtype=np.float64).reshape(5, 8) * 0.23 + 1.0)
    v = 2.0 * np.sin(np.arange(15, dtype=np.float64).reshape(5, 3) * 0.61)
    return q, k, v


def attention(q, k, v, mask=None):
    scores = q @ k.T / np.sqrt(q.shape[1])
    if mask is not None:
        scores = scores + mask
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights @ v


def rows(name, values):
    number = r"([-\d.]+)"
    return [expect(rf"{name}\[{i}\] = {number} {number} {number}", *row, tolerance=0.0000011)
            for i, row in enumerate(values)]


def cost():
    d, h = 768, 12
    checks = []
    for s in [128, 512, 2048, 8192]:
        linear, quadratic = 8 * s * d * d, 4 * s * s * d
        total = linear + quadratic
        scores_mib = h * s * s * 4 / 2**20
        checks.append(expect(rf"s =\s+{s}:\s+([\d.]+) GFLOPs,\s+([\d.]+)% in scores and mixing, "
                             rf"score matrices\s+([\d.]+) MiB",
                             total / 1e9, 100 * quadratic / total, scores_mib, tolerance=0.051))
    return checks


def checks(cache):
    q, k, v = inputs()
    causal = np.triu(np.full((5, 5), -np.inf), k=1)
    return {"05-attention": {
        "attention-output": rows("out", attention(q, k, v))
        + [expect(r"weights sum to ([\d.]+)", 1.0, tolerance=0.0000011)],
        "causal-output": rows("causal", attention(q, k, v, causal)),
        "attention-cost": cost(),
    }}
