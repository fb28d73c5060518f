"""Lesson 04 (neural networks): the perceptron, parameter counts and a tiny network's backprop,
recomputed with numpy from the same formulas the chapter builds its inputs with."""
import numpy as np

from notebook_checks import expect


def perceptron():
    i = np.arange(40, dtype=np.float64)
    points = np.stack([2.0 * np.sin(1.7 * i + 0.3), 2.0 * np.cos(2.3 * i)], axis=1)
    signs = np.where(points[:, 0] - 0.5 * points[:, 1] + 0.25 > 0, 1.0, -1.0)
    w, b = np.zeros(2), 0.0
    epochs = 0
    for _ in range(100):
        epochs += 1
        mistakes = 0
        for x, y in zip(points, signs):
            if y * (x @ w + b) <= 0:
                w, b = w + y * x, b + y
                mistakes += 1
        if mistakes == 0:
            break
    return [expect(r"converged after (\d+) epochs: w = \[([-\d.]+), ([-\d.]+)\], b = ([-\d.]+)",
                   epochs, w[0], w[1], b, tolerance=0.00011)]


def parameter_count():
    checks = []
    for widths in [[2, 16, 2], [2, 64, 64, 2], [784, 256, 10], [768, 3072, 768]]:
        count = sum(a * b + b for a, b in zip(widths, widths[1:]))
        pattern = r"widths \[" + ", ".join(map(str, widths)) + r"\]: (\d+) parameters"
        checks.append(expect(pattern, count))
    return checks


def tiny_network():
    x = np.sin(np.arange(12, dtype=np.float64).reshape(4, 3) * 0.37)
    w1 = 0.5 * np.cos(np.arange(15, dtype=np.float64).reshape(3, 5) * 0.23)
    b1 = 0.1 * np.arange(5) - 0.2
    w2 = np.sin(np.arange(15, dtype=np.float64).reshape(5, 3) * 0.41 + 0.5)
    b2 = 0.05 * np.arange(3)
    labels = np.array([0, 2, 1, 2])
    n = len(labels)
    z1 = x @ w1 + b1
    h = np.tanh(z1)
    logits = h @ w2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(n), labels]).mean()
    dlogits = p.copy()
    dlogits[np.arange(n), labels] -= 1
    dlogits /= n
    dw2, db2 = h.T @ dlogits, dlogits.sum(axis=0)
    dz1 = (dlogits @ w2.T) * (1 - h**2)
    dw1, db1 = x.T @ dz1, dz1.sum(axis=0)
    t = 0.0000011
    return [
        expect(r"loss = ([\d.]+)", loss, tolerance=t),
        expect(r"\|dW1\| = ([\d.]+)", np.linalg.norm(dw1), tolerance=t),
        expect(r"\|db1\| = ([\d.]+)", np.linalg.norm(db1), tolerance=t),
        expect(r"\|dW2\| = ([\d.]+)", np.linalg.norm(dw2), tolerance=t),
        expect(r"\|db2\| = ([\d.]+)", np.linalg.norm(db2), tolerance=t),
        expect(r"dW2\[0, 0\] = ([-\d.]+), db2 = \[([-\d.]+), ([-\d.]+), ([-\d.]+)\]",
               dw2[0, 0], *db2, tolerance=t),
    ]


def checks(cache):
    return {"04-neural-networks": {
        "perceptron": perceptron(),
        "parameter-count": parameter_count(),
        "tiny-network": tiny_network(),
    }}
