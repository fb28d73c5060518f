"""Lesson 11, the chatbot: classification scores with scikit-learn and the out-of-scope threshold
with numpy, on the inputs the tagged cells build from formulas (the MiniLM model's own numbers are
asserted in the notebook, against the library)."""
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from notebook_checks import expect


def macro_f1():
    i = np.arange(60)
    truths = i % 5
    guesses = np.where(i % 7 == 0, (i + 1) % 5, np.where(i % 11 == 0, 5, i % 5))
    labels = list(range(6))
    return [expect(r"accuracy ([\d.]+), macro-F1 ([\d.]+), weighted-F1 ([\d.]+)",
                   accuracy_score(truths, guesses),
                   f1_score(truths, guesses, labels=labels, average="macro", zero_division=0),
                   f1_score(truths, guesses, labels=labels, average="weighted", zero_division=0),
                   tolerance=0.0000011)]


def threshold():
    """`chatbot::formula_scores` in float32, then the balanced choice over observed confidences
    (and 0), ties to the lower threshold, as `chat::training::choose_threshold`."""
    x = np.arange(60, dtype=np.float32)
    right = np.arange(60) % 4 != 0
    base = np.where(right, np.float32(0.55), np.float32(0.25)).astype(np.float32)
    confidence = base + np.float32(0.45) * np.sin(np.float32(1.3) * x) ** 2
    oos = np.float32(0.1) + np.float32(0.55) * np.abs(np.cos(np.float32(0.7) * np.arange(20, dtype=np.float32)))

    def scores(t):
        return np.mean(right & (confidence >= t)), np.mean(oos < t)

    candidates = np.unique(np.concatenate([confidence, oos, [np.float32(0.0)]]).astype(np.float32))
    best, best_t = -np.inf, np.float32(0.0)
    for t in candidates:
        answered, rejected = scores(t)
        if (answered + rejected) / 2 > best:
            best, best_t = (answered + rejected) / 2, t
    answered, rejected = scores(best_t)
    return [expect(r"chosen threshold ([\d.]+): in-scope answered right ([\d.]+), out-of-scope rejected ([\d.]+)",
                   best_t, answered, rejected, tolerance=0.0000051)]


def checks(cache):
    return {"11-chatbot": {"macro-f1": macro_f1(), "threshold": threshold()}}
