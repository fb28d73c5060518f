"""scikit-learn's classification metrics on (n_classes, truths, predictions) cases.

usage: classification.py CASES.json
CASES.json holds [{"n_classes": n, "truths": [...], "predictions": [...]}, ...]. Prints JSON
{"cases": [...], "versions": {...}} with, per case and all over labels=list(range(n)) with
zero_division=0: "accuracy" (accuracy_score), "precision", "recall", "f1", "support"
(precision_recall_fscore_support, average=None), "macro" and "weighted" ([precision, recall, f1]
with that average), "macro_f1" and "weighted_f1" (f1_score), "confusion" (confusion_matrix),
"report" (classification_report's text, digits=2; when no prediction is right it prints the
supports as floats, "1.0"), and "macro_f1_present" (f1_score macro
without labels: only the labels present in truths or predictions).
"""
import json
import sys
import warnings

import numpy
import sklearn
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def whole(count):
    assert float(count).is_integer(), count
    return int(count)


def scores(case):
    labels = list(range(case["n_classes"]))
    t, p = case["truths"], case["predictions"]
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=0
    )
    averages = {
        average: [
            float(x)
            for x in precision_recall_fscore_support(
                t, p, labels=labels, average=average, zero_division=0
            )[:3]
        ]
        for average in ("macro", "weighted")
    }
    return {
        "accuracy": float(accuracy_score(t, p)),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        # With no true positive at all, sklearn counts in floats (its "pathological case"); the
        # counts are whole numbers all the same.
        "support": [whole(s) for s in support],
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "macro_f1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(t, p, labels=labels, average="weighted", zero_division=0)),
        "macro_f1_present": float(f1_score(t, p, average="macro", zero_division=0)),
        "confusion": confusion_matrix(t, p, labels=labels).tolist(),
        "report": classification_report(t, p, labels=labels, zero_division=0, digits=2),
    }


def main():
    # Without `labels`, a case of one class makes sklearn warn that its confusion matrix is 1×1:
    # intended here (that is the "present labels" variant), and noise on the test's stderr.
    warnings.filterwarnings("ignore", message="A single label was found")
    with open(sys.argv[1], encoding="utf-8") as file:
        cases = json.load(file)
    result = {
        "cases": [scores(case) for case in cases],
        "versions": {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
