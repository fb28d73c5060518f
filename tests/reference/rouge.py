"""Google's rouge-score on (target, prediction) pairs, and an independent ROUGE-S.

usage: rouge.py PAIRS.json
PAIRS.json holds [[target, prediction], ...]. Prints JSON
{"scores": {"plain": [...], "stemmed": [...]}, "rouge_s4": [...], "rouge_s_star": [...],
 "seconds": {"plain": t, "stemmed": t}, "versions": {...}}
where each scores entry is {rouge1|rouge2|rougeL|rougeLsum: [precision, recall, fmeasure]}
from rouge_scorer.RougeScorer(use_stemmer=False/True).score(target, prediction), and the ROUGE-S
lists are [precision, recall, fmeasure] of skip-bigrams (Lin 2004) written here from the paper's
definition: ordered token pairs at most 4 apart in gap (S4) or any distance (S*), counts clipped,
over rouge-score's unstemmed tokens. `seconds` is rouge-score's scoring time, for the benchmark.
"""
import collections
import itertools
import json
import sys
import time

import nltk
import rouge_score
from rouge_score import rouge_scorer, tokenize

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def skip_bigrams(tokens, max_gap):
    pairs = collections.Counter()
    for i, j in itertools.combinations(range(len(tokens)), 2):
        if max_gap is None or j - i - 1 <= max_gap:
            pairs[(tokens[i], tokens[j])] += 1
    return pairs


def rouge_s(target, prediction, max_gap):
    t = skip_bigrams(tokenize.tokenize(target, None), max_gap)
    p = skip_bigrams(tokenize.tokenize(prediction, None), max_gap)
    hits = sum(min(n, p[pair]) for pair, n in t.items())
    precision = hits / max(sum(p.values()), 1)
    recall = hits / max(sum(t.values()), 1)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return [precision, recall, f]


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        pairs = json.load(file)
    result = {"scores": {}, "seconds": {}}
    for name, stem in (("plain", False), ("stemmed", True)):
        scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=stem)
        start = time.perf_counter()
        scores = [scorer.score(target, prediction) for target, prediction in pairs]
        result["seconds"][name] = time.perf_counter() - start
        result["scores"][name] = [
            {k: [s[k].precision, s[k].recall, s[k].fmeasure] for k in TYPES} for s in scores
        ]
    result["rouge_s4"] = [rouge_s(t, p, 4) for t, p in pairs]
    # S* counts every ordered pair: quadratic in Python, so only the first 200 pairs.
    result["rouge_s_star"] = [rouge_s(t, p, None) for t, p in pairs[:200]]
    result["versions"] = {"rouge_score": getattr(rouge_score, "__version__", "0.1.2"),
                          "nltk": nltk.__version__}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
