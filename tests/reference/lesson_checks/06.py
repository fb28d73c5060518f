"""Lesson 06, the transformer and BART: LayerNorm and the feed-forward sub-layer on formula-built
inputs (numpy, math.erf), and bart-base's parameters by component from its config.json."""
import json
import math
import os

import numpy as np

from notebook_checks import expect

NUMBER = r"\s+(-?[\d.]+)"


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def gelu(z):
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def layer_norm_check():
    i, j = np.meshgrid(np.arange(3), np.arange(6), indexing="ij")
    x = np.sin((i * 6 + j) * 0.37) * (i + 1)
    gamma = 1.0 + 0.1 * np.arange(6)
    beta = 0.05 * np.arange(6)
    y = layer_norm(x, gamma, beta)
    plain = layer_norm(x, np.ones(6), np.zeros(6))
    checks = [expect(rf"(?m)^row {r}:" + NUMBER * 6, *y[r], tolerance=0.00011) for r in range(3)]
    checks += [expect(rf"normalized row {r}: mean (-?[\d.]+), variance ([\d.]+)",
                      plain[r].mean(), plain[r].var(), tolerance=0.0000011) for r in range(3)]
    return checks


def feed_forward_check():
    i, j = np.meshgrid(np.arange(2), np.arange(4), indexing="ij")
    x = np.cos(0.5 * i + 0.3 * j)
    k, j1 = np.meshgrid(np.arange(8), np.arange(4), indexing="ij")
    w1 = 0.5 * np.sin(0.7 * k + 0.2 * j1)
    b1 = 0.1 * np.arange(8) - 0.3
    j2, k2 = np.meshgrid(np.arange(4), np.arange(8), indexing="ij")
    w2 = 0.5 * np.cos(0.4 * j2 - 0.3 * k2)
    b2 = 0.05 * np.arange(4)
    fed = gelu(x @ w1.T + b1) @ w2.T + b2
    out = layer_norm(x + fed, np.ones(4), np.zeros(4))
    checks = []
    for r in range(2):
        checks.append(expect(rf"ffn row {r}:" + NUMBER * 4, *fed[r], tolerance=0.00011))
        checks.append(expect(rf"out row {r}:" + NUMBER * 4, *out[r], tolerance=0.00011))
    return checks


def bart_base_check():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures",
                        "models", "bart-base-config.json")
    with open(path) as file:
        cfg = json.load(file)
    d, vocab = cfg["d_model"], cfg["vocab_size"]
    attention = 4 * (d * d + d)
    norm = 2 * d

    def ffn(width):
        return d * width + width + width * d + d

    enc, dec = cfg["encoder_layers"], cfg["decoder_layers"]
    components = [
        ("token embedding \\(tied LM head\\)", vocab * d),
        ("positions", 2 * (cfg["max_position_embeddings"] + 2) * d),
        ("embedding LayerNorms", 2 * norm),
        ("encoder self-attention", enc * attention),
        ("encoder feed-forward", enc * ffn(cfg["encoder_ffn_dim"])),
        ("encoder LayerNorms", enc * 2 * norm),
        ("decoder self-attention", dec * attention),
        ("decoder cross-attention", dec * attention),
        ("decoder feed-forward", dec * ffn(cfg["decoder_ffn_dim"])),
        ("decoder LayerNorms", dec * 3 * norm),
    ]
    total = sum(n for _, n in components)
    checks = [expect(rf"(?m)^{name}\s+(\d+)\s+([\d.]+)%", n, 100 * n / total, tolerance=0.0051)
              for name, n in components]
    checks.append(expect(r"(?m)^total\s+(\d+)", total))
    return checks


def checks(cache):
    return {
        "06-transformer-and-bart": {
            "layer-norm": layer_norm_check(),
            "feed-forward": feed_forward_check(),
            "bart-base-parameters": bart_base_check(),
        }
    }
