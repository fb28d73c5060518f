"""Lesson 08 (LoRA): the LoRA layer's output on formula-built matrices, and PEFT's trainable-parameter
line for BART-base, counted from its config.json."""
import json
import os

import numpy as np

from notebook_checks import expect

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "models")


def formula(rows, cols, phase):
    """`Array2::from_shape_fn((rows, cols), |(i, j)| ((i * cols + j) as f64 * 0.37 + phase).sin())`."""
    return np.sin(np.arange(rows * cols, dtype=np.float64).reshape(rows, cols) * 0.37 + phase)


def lora_forward():
    x, w, a, b = formula(3, 6, 0.0), formula(4, 6, 1.0), formula(2, 6, 2.0), formula(4, 2, 3.0)
    alpha, r = 4.0, a.shape[0]
    y = x @ (w + (alpha / r) * b @ a).T
    number = r"(-?[\d.]+)"
    return [expect(rf"y row {i}: " + " ".join([number] * y.shape[1]), *y[i], tolerance=2e-6)
            for i in range(y.shape[0])]


def bart_base_parameters(cfg):
    """torch's model.parameters() of BartForConditionalGeneration: shared embedding (the LM head is
    tied), learned positions (max_position_embeddings + 2 rows), LayerNorms, every Linear."""
    d, vocab = cfg["d_model"], cfg["vocab_size"]
    linear = lambda n_in, n_out: n_in * n_out + n_out
    norm = 2 * d
    total = vocab * d + 2 * (cfg["max_position_embeddings"] + 2) * d + 2 * norm
    total += cfg["encoder_layers"] * (4 * linear(d, d) + linear(d, cfg["encoder_ffn_dim"])
                                      + linear(cfg["encoder_ffn_dim"], d) + 2 * norm)
    total += cfg["decoder_layers"] * (8 * linear(d, d) + linear(d, cfg["decoder_ffn_dim"])
                                      + linear(cfg["decoder_ffn_dim"], d) + 3 * norm)
    return total


def thousands(n):
    """Groups of `{:,}` as separate numbers: 1,234,567 -> [1, 234, 567]."""
    return [int(part) for part in f"{n:,}".split(",")]


def bart_base_lora():
    with open(os.path.join(FIXTURES, "bart-base-config.json")) as f:
        cfg = json.load(f)
    base = bart_base_parameters(cfg)
    d, r = cfg["d_model"], 8
    # q_proj and v_proj of every attention block: encoder self, decoder self and cross.
    blocks = cfg["encoder_layers"] + 2 * cfg["decoder_layers"]
    trainable = blocks * 2 * r * (d + d)
    all_params = base + trainable
    group = r"(\d+)"
    trainable_groups, all_groups = thousands(trainable), thousands(all_params)
    line = (r"trainable params: " + ",".join([group] * len(trainable_groups))
            + r" \|\| all params: " + ",".join([group] * len(all_groups))
            + r" \|\| trainable%: ([\d.]+)")
    return [expect(r"BART-base parameters: (\d+)", base),
            expect(line, *trainable_groups, *all_groups, 100 * trainable / all_params,
                   tolerance=0.00006)]


def checks(cache):
    return {"08-lora": {"lora-forward": lora_forward(), "bart-base-lora": bart_base_lora()}}
