"""Lesson 07, decoding and evaluation: softmax, temperature, top-k and top-p on formula-built scores
(numpy, transformers' rules), perplexity of given log-probabilities (numpy), and ROUGE-1/2/L of fixed
pairs by Google's rouge-score package (with the Porter stemmer, as the cell asks)."""
import numpy as np
from rouge_score import rouge_scorer

from notebook_checks import expect

NUMBER = r"\s+([\d.]+)"


def softmax(scores):
    finite = np.isfinite(scores)
    exps = np.zeros_like(scores)
    exps[finite] = np.exp(scores[finite] - scores[finite].max())
    return exps / exps.sum()


def top_k(scores, k):
    kth = np.sort(scores)[::-1][k - 1]
    return np.where(scores < kth, -np.inf, scores)


def top_p(scores, p):
    """transformers' TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is
    at most 1 - p, never the highest."""
    order = np.argsort(scores, kind="stable")
    cumulative = np.cumsum(softmax(scores)[order])
    remove = cumulative <= 1 - p
    remove[-1] = False
    out = scores.copy()
    out[order[remove]] = -np.inf
    return out


def filtering():
    scores = (2.0 * np.cos(0.9 * np.arange(12)) + 0.1 * np.arange(12)).astype(np.float32).astype(
        np.float64)
    rows = [
        ("softmax", softmax(scores)),
        ("T = 0.5", softmax(scores / 0.5)),
        ("top-k 3", softmax(top_k(scores, 3))),
        ("top-p 0.8", softmax(top_p(scores, 0.8))),
    ]
    return [expect(rf"(?m)^{name}" + NUMBER * 12, *probs, tolerance=0.00011) for name, probs in rows]


def perplexity():
    t = np.arange(10)
    log_probs = np.log(0.2 + 0.6 * np.sin(0.5 * (t + 1)) ** 2)
    nll = -log_probs.mean()
    return [expect(r"mean NLL ([\d.]+), perplexity ([\d.]+)", nll, np.exp(nll), tolerance=0.0000011)]


def rouge():
    examples = [
        ("Anna's card was blocked; Tom sends a new one.",
         "Tom blocked Anna's card and is sending a new card."),
        ("The €40 top-up has not arrived; wait until Monday.",
         "The top-up of 40 euros is pending until Monday."),
        ("Kofi was charged twice by Petals Florist.",
         "Kofi was charged twice; Rui reversed the payment."),
    ]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    checks = []
    for i, (reference, prediction) in enumerate(examples):
        s = scorer.score(reference, prediction)
        checks.append(expect(rf"pair {i}: ROUGE-1 ([\d.]+)\s+ROUGE-2 ([\d.]+)\s+ROUGE-L ([\d.]+)",
                             s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure,
                             tolerance=0.00006))
    return checks


def checks(cache):
    return {
        "07-decoding-and-evaluation": {
            "filtering": filtering(),
            "perplexity": perplexity(),
            "rouge": rouge(),
        }
    }
