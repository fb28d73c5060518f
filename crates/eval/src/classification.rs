//! Classification scores as scikit-learn defines them: accuracy, per-class precision, recall, F1
//! and support, their macro and weighted averages, the confusion matrix, and the text table of
//! `classification_report`.
//!
//! A compressed classifier (an intent model on 77 classes, say) can keep its accuracy while losing
//! the rare classes entirely; per-class scores and macro-F1 show it. The numbers equal
//! scikit-learn's for `labels=list(range(n_classes))` and `zero_division=0` (the parity test
//! `tests/tests/classification_parity.rs` checks it to 1e-12):
//!
//! - precision `tp / predicted`, recall `tp / support`, F1 `2·tp / (support + predicted)` (the
//!   form scikit-learn computes; equal to `2PR / (P + R)`); each is 0 when its denominator is,
//!   which is what `zero_division=0` and the default `"warn"` give.
//! - Every class in `0..n_classes` counts, including classes that occur neither in the truths nor
//!   in the predictions: each adds an F1 of 0 to the macro mean. This is `f1_score(...,
//!   average="macro", labels=range(n))`; without `labels` scikit-learn averages only over the
//!   labels present in truths or predictions, which [`macro_f1_present`] computes.
//! - Weighted averages weight each class by its support, so absent classes weigh nothing.
//!
//! ```
//! use eval::classification::{accuracy, classification_report, macro_f1};
//!
//! let truths = [0, 0, 1, 1, 1, 2];
//! let predictions = [0, 1, 1, 1, 0, 1];
//! assert_eq!(accuracy(&truths, &predictions)?, 0.5);
//! let report = classification_report(&truths, &predictions, 4)?;
//! // Class 1: predicted 4 times, right 2 times, 3 in truth: P = 1/2, R = 2/3, F1 = 4/7.
//! assert_eq!(report.classes[1].precision, 0.5);
//! assert!((report.classes[1].f1 - 4.0 / 7.0).abs() < 1e-15);
//! // Classes 2 (never predicted) and 3 (absent everywhere) score 0 and count in the macro mean.
//! assert_eq!((report.classes[2].f1, report.classes[3].f1), (0.0, 0.0));
//! assert!((macro_f1(&truths, &predictions, 4)? - (0.5 + 4.0 / 7.0) / 4.0).abs() < 1e-15);
//! assert_eq!(report.confusion[1], [1, 2, 0, 0]); // truth 1 predicted as 0 once, as 1 twice
//! # Ok::<(), eval::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Of the items predicted as this class, the share that are: `tp / predicted`, 0 if none is.
    pub precision: f64,
    /// Of the items of this class, the share predicted as it: `tp / support`, 0 if none is.
    pub recall: f64,
    /// Harmonic mean of precision and recall: `2·tp / (support + predicted)`, 0 if both are 0.
    pub f1: f64,
    /// How many truths are this class.
    pub support: usize,
}

/// Precision, recall and F1 averaged over classes (a row "macro avg" or "weighted avg").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    /// Mean precision.
    pub precision: f64,
    /// Mean recall.
    pub recall: f64,
    /// Mean F1 (the mean of per-class F1s, not the F1 of the mean precision and recall).
    pub f1: f64,
}

/// Everything scikit-learn's `classification_report` shows, plus the confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// How many (truth, prediction) pairs were scored.
    pub n_samples: usize,
    /// Share of predictions equal to the truth.
    pub accuracy: f64,
    /// Scores of class `k` at index `k`, for every class in `0..n_classes`.
    pub classes: Vec<ClassScores>,
    /// Unweighted mean over all `n_classes` classes.
    pub macro_avg: Averages,
    /// Mean over classes weighted by support.
    pub weighted_avg: Averages,
    /// `confusion[truth][prediction]`: how many items of class `truth` were predicted as
    /// `prediction` (scikit-learn's `confusion_matrix` layout: rows are truths).
    pub confusion: Vec<Vec<usize>>,
}

/// Share of `predictions` equal to `truths`: scikit-learn's `accuracy_score`.
pub fn accuracy(truths: &[usize], predictions: &[usize]) -> Result<f64> {
    check_pairs(truths, predictions)?;
    let correct = truths
        .iter()
        .zip(predictions)
        .filter(|(t, p)| t == p)
        .count();
    Ok(correct as f64 / truths.len() as f64)
}

/// `confusion[truth][prediction]` counts over classes `0..n_classes`: scikit-learn's
/// `confusion_matrix(truths, predictions, labels=range(n_classes))`.
pub fn confusion_matrix(
    truths: &[usize],
    predictions: &[usize],
    n_classes: usize,
) -> Result<Vec<Vec<usize>>> {
    check_labels(truths, predictions, n_classes)?;
    let mut confusion = vec![vec![0; n_classes]; n_classes];
    for (&truth, &prediction) in truths.iter().zip(predictions) {
        confusion[truth][prediction] += 1;
    }
    Ok(confusion)
}

/// Scores of every class in `0..n_classes`: scikit-learn's `precision_recall_fscore_support(...,
/// labels=range(n_classes), zero_division=0)`.
pub fn per_class(
    truths: &[usize],
    predictions: &[usize],
    n_classes: usize,
) -> Result<Vec<ClassScores>> {
    Ok(scores_from_confusion(&confusion_matrix(
        truths,
        predictions,
        n_classes,
    )?))
}

/// Mean F1 over all classes `0..n_classes`, absent ones included with F1 = 0: scikit-learn's
/// `f1_score(..., average="macro", labels=range(n_classes), zero_division=0)`.
pub fn macro_f1(truths: &[usize], predictions: &[usize], n_classes: usize) -> Result<f64> {
    Ok(macro_average(&per_class(truths, predictions, n_classes)?).f1)
}

/// Mean F1 weighted by each class's support: scikit-learn's `f1_score(..., average="weighted")`
/// (absent classes weigh nothing, so `labels` does not change it).
pub fn weighted_f1(truths: &[usize], predictions: &[usize], n_classes: usize) -> Result<f64> {
    Ok(weighted_average(&per_class(truths, predictions, n_classes)?).f1)
}

/// Mean F1 over the labels that occur in `truths` or `predictions`: scikit-learn's
/// `f1_score(truths, predictions, average="macro", zero_division=0)` without `labels`.
///
/// Higher than [`macro_f1`] when some classes never occur; it is the number papers usually report
/// when they call sklearn without `labels`. Labels may be any numbers here.
pub fn macro_f1_present(truths: &[usize], predictions: &[usize]) -> Result<f64> {
    check_pairs(truths, predictions)?;
    let present: Vec<usize> = truths
        .iter()
        .chain(predictions)
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Every label is in `present`, so the search always finds it.
    let index = |label: &usize| present.binary_search(label).unwrap_or_default();
    let truths: Vec<usize> = truths.iter().map(index).collect();
    let predictions: Vec<usize> = predictions.iter().map(index).collect();
    macro_f1(&truths, &predictions, present.len())
}

/// Accuracy, per-class scores, their averages and the confusion matrix over classes
/// `0..n_classes`; [`ClassificationReport::table`] prints them as scikit-learn does.
pub fn classification_report(
    truths: &[usize],
    predictions: &[usize],
    n_classes: usize,
) -> Result<ClassificationReport> {
    let confusion = confusion_matrix(truths, predictions, n_classes)?;
    let classes = scores_from_confusion(&confusion);
    Ok(ClassificationReport {
        n_samples: truths.len(),
        accuracy: accuracy(truths, predictions)?,
        macro_avg: macro_average(&classes),
        weighted_avg: weighted_average(&classes),
        classes,
        confusion,
    })
}

impl ClassificationReport {
    /// The text of scikit-learn's `classification_report(..., labels=range(n), digits=2)`,
    /// character for character: classes named by their number. (One difference: when no
    /// prediction is right, scikit-learn counts in floats and prints supports as `1.0`; here
    /// supports are always integers.)
    pub fn table(&self) -> String {
        let names: Vec<String> = (0..self.classes.len()).map(|k| k.to_string()).collect();
        self.table_rows(&names, 2)
    }

    /// The table with each class's name (`target_names`) and `digits` decimals. `names` must
    /// hold one name per class.
    pub fn table_with(&self, names: &[&str], digits: usize) -> Result<String> {
        if names.len() != self.classes.len() {
            return Err(Error::LengthMismatch {
                what: "class names and classes".into(),
                left: names.len(),
                right: self.classes.len(),
            });
        }
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        Ok(self.table_rows(&names, digits))
    }

    /// scikit-learn's layout: names right-aligned to the longest name or "weighted avg", numbers
    /// in columns 9 wide, a blank line after the header and after the classes.
    fn table_rows(&self, names: &[String], digits: usize) -> String {
        let width = names
            .iter()
            .map(|name| name.chars().count())
            .chain([WEIGHTED_AVG.len(), digits])
            .max()
            .unwrap_or_default();
        let mut table = format!(
            "{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n",
            "", "precision", "recall", "f1-score", "support"
        );
        let mut row = |name: &str, precision: f64, recall: f64, f1: f64, support: usize| {
            // Writing to a String cannot fail.
            let _ = writeln!(
                table,
                "{name:>width$}  {precision:>9.digits$} {recall:>9.digits$} {f1:>9.digits$} {support:>9}"
            );
        };
        for (name, class) in names.iter().zip(&self.classes) {
            row(name, class.precision, class.recall, class.f1, class.support);
        }
        let mut table = table + "\n";
        // With every label listed, scikit-learn's micro average is the accuracy and gets its own row.
        let _ = writeln!(
            table,
            "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}",
            "accuracy", "", "", self.accuracy, self.n_samples
        );
        for (name, avg) in [
            ("macro avg", self.macro_avg),
            (WEIGHTED_AVG, self.weighted_avg),
        ] {
            let _ = writeln!(
                table,
                "{name:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}",
                avg.precision, avg.recall, avg.f1, self.n_samples
            );
        }
        table
    }
}

/// The longest row name of the table, which sets its least width.
const WEIGHTED_AVG: &str = "weighted avg";

/// Per-class scores from a confusion matrix (rows truths, columns predictions).
fn scores_from_confusion(confusion: &[Vec<usize>]) -> Vec<ClassScores> {
    (0..confusion.len())
        .map(|k| {
            let tp = confusion[k][k];
            let support: usize = confusion[k].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[k]).sum();
            ClassScores {
                precision: ratio(tp, predicted),
                recall: ratio(tp, support),
                f1: ratio(2 * tp, support + predicted),
                support,
            }
        })
        .collect()
}

/// `numerator / denominator`, 0 when the denominator is (scikit-learn's `zero_division=0`).
fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Unweighted means over classes; `classes` is never empty (`n_classes ≥ 1` is checked).
fn macro_average(classes: &[ClassScores]) -> Averages {
    let n = classes.len() as f64;
    Averages {
        precision: classes.iter().map(|c| c.precision).sum::<f64>() / n,
        recall: classes.iter().map(|c| c.recall).sum::<f64>() / n,
        f1: classes.iter().map(|c| c.f1).sum::<f64>() / n,
    }
}

/// Means weighted by support; the supports sum to the number of samples, never 0.
fn weighted_average(classes: &[ClassScores]) -> Averages {
    let total = classes.iter().map(|c| c.support).sum::<usize>() as f64;
    let mean = |score: fn(&ClassScores) -> f64| {
        classes
            .iter()
            .map(|c| score(c) * c.support as f64)
            .sum::<f64>()
            / total
    };
    Averages {
        precision: mean(|c| c.precision),
        recall: mean(|c| c.recall),
        f1: mean(|c| c.f1),
    }
}

/// Truths and predictions pair up and are not empty (a score over no items is 0/0).
fn check_pairs(truths: &[usize], predictions: &[usize]) -> Result<()> {
    if truths.len() != predictions.len() {
        return Err(Error::LengthMismatch {
            what: "truths and predictions".into(),
            left: truths.len(),
            right: predictions.len(),
        });
    }
    if truths.is_empty() {
        return Err(Error::Empty {
            what: "the list of truths and predictions".into(),
        });
    }
    Ok(())
}

/// [`check_pairs`], at least one class, and every label in `0..n_classes`.
fn check_labels(truths: &[usize], predictions: &[usize], n_classes: usize) -> Result<()> {
    check_pairs(truths, predictions)?;
    if n_classes == 0 {
        return Err(Error::InvalidArgument {
            name: "n_classes",
            value: "0".into(),
            reason: "need at least one class".into(),
        });
    }
    for (what, labels) in [("truths", truths), ("predictions", predictions)] {
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= n_classes) {
            return Err(Error::LabelOutOfRange {
                what,
                index,
                label,
                n_classes,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report of `truths` against `predictions` over `n_classes` classes has these per-class
    /// (precision, recall, F1, support) and this (accuracy, macro-F1, weighted-F1), to 1e-15.
    fn check(
        truths: &[usize],
        predictions: &[usize],
        n_classes: usize,
        classes: &[(f64, f64, f64, usize)],
        (accuracy, macro_f1, weighted_f1): (f64, f64, f64),
    ) {
        let report = classification_report(truths, predictions, n_classes).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        for (k, (got, want)) in report.classes.iter().zip(classes).enumerate() {
            assert!(
                close(got.precision, want.0)
                    && close(got.recall, want.1)
                    && close(got.f1, want.2)
                    && got.support == want.3,
                "class {k}: {got:?}, expected {want:?}"
            );
        }
        assert_eq!(report.classes.len(), classes.len());
        for (name, got, want) in [
            ("accuracy", report.accuracy, accuracy),
            ("macro F1", report.macro_avg.f1, macro_f1),
            ("weighted F1", report.weighted_avg.f1, weighted_f1),
        ] {
            assert!(close(got, want), "{name}: {got}, expected {want}");
        }
    }

    #[test]
    fn scores_follow_sklearns_definitions() {
        // Confusion [[1, 1, 0], [1, 2, 0], [0, 1, 0]]: class 0 P 1/2 R 1/2 F 1/2; class 1 P 2/4
        // R 2/3 F 4/7; class 2 never predicted, P 0 (0/0) R 0 F 0.
        let f1 = [0.5, 4.0 / 7.0, 0.0];
        check(
            &[0, 0, 1, 1, 1, 2],
            &[0, 1, 1, 1, 0, 1],
            3,
            &[
                (0.5, 0.5, 0.5, 2),
                (0.5, 2.0 / 3.0, 4.0 / 7.0, 3),
                (0.0, 0.0, 0.0, 1),
            ],
            (
                0.5,
                (f1[0] + f1[1]) / 3.0,
                (2.0 * f1[0] + 3.0 * f1[1]) / 6.0,
            ),
        );
        // A class only predicted (2): P 0/1, R 0/0 → 0. Class 3 absent from both: all 0, support 0,
        // and it still counts in the macro mean (4 classes).
        check(
            &[0, 1, 1],
            &[0, 1, 2],
            4,
            &[
                (1.0, 1.0, 1.0, 1),
                (1.0, 0.5, 2.0 / 3.0, 2),
                (0.0, 0.0, 0.0, 0),
                (0.0, 0.0, 0.0, 0),
            ],
            (
                2.0 / 3.0,
                (1.0 + 2.0 / 3.0) / 4.0,
                (1.0 + 2.0 * 2.0 / 3.0) / 3.0,
            ),
        );
        // One class, all right.
        check(&[0, 0], &[0, 0], 1, &[(1.0, 1.0, 1.0, 2)], (1.0, 1.0, 1.0));
        // All wrong.
        check(
            &[0, 1],
            &[1, 0],
            2,
            &[(0.0, 0.0, 0.0, 1), (0.0, 0.0, 0.0, 1)],
            (0.0, 0.0, 0.0),
        );
    }

    #[test]
    fn the_functions_agree_with_the_report() {
        let (truths, predictions) = ([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]);
        let report = classification_report(&truths, &predictions, 5).unwrap();
        assert_eq!(
            macro_f1(&truths, &predictions, 5).unwrap(),
            report.macro_avg.f1
        );
        assert_eq!(
            weighted_f1(&truths, &predictions, 5).unwrap(),
            report.weighted_avg.f1
        );
        assert_eq!(per_class(&truths, &predictions, 5).unwrap(), report.classes);
        assert_eq!(accuracy(&truths, &predictions).unwrap(), 4.0 / 6.0);
        assert_eq!(
            confusion_matrix(&truths, &predictions, 3).unwrap(),
            [[2, 0, 0], [0, 0, 1], [1, 0, 2]]
        );
    }

    #[test]
    fn macro_f1_present_averages_only_labels_that_occur() {
        // Labels 10 and 30 occur, 20 does not. Truths [10, 30, 30], predictions [10, 30, 10]:
        // class 10 P 1/2 R 1 F 2/3; class 30 P 1 R 1/2 F 2/3.
        let present = macro_f1_present(&[10, 30, 30], &[10, 30, 10]).unwrap();
        assert!((present - 2.0 / 3.0).abs() < 1e-15);
        // Over 0..=30 the 29 absent classes pull the macro mean down.
        let all = macro_f1(&[10, 30, 30], &[10, 30, 10], 31).unwrap();
        assert!((all - 2.0 * (2.0 / 3.0) / 31.0).abs() < 1e-15);
    }

    #[test]
    fn the_table_is_sklearns() {
        // sklearn.metrics.classification_report([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 1],
        // labels=[0, 1, 2], zero_division=0)
        let report = classification_report(&[0, 0, 1, 1, 1, 2], &[0, 1, 1, 1, 0, 1], 3).unwrap();
        let expected = "              precision    recall  f1-score   support

           0       0.50      0.50      0.50         2
           1       0.50      0.67      0.57         3
           2       0.00      0.00      0.00         1

    accuracy                           0.50         6
   macro avg       0.33      0.39      0.36         6
weighted avg       0.42      0.50      0.45         6
";
        assert_eq!(report.table(), expected);
        let named = report
            .table_with(&["refund", "card_arrival_delayed", "pin"], 3)
            .unwrap();
        assert!(named.starts_with(&format!("{:>20}  {:>9}", "", "precision")));
        assert!(
            named.contains("\ncard_arrival_delayed      0.500     0.667     0.571         3\n")
        );
        assert!(matches!(
            report.table_with(&["a"], 2),
            Err(Error::LengthMismatch {
                left: 1,
                right: 3,
                ..
            })
        ));
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let message = |result: Result<ClassificationReport>| result.unwrap_err().to_string();
        assert_eq!(
            message(classification_report(&[0, 1], &[0], 2)),
            "truths and predictions: lengths differ (2 vs 1), need one entry of each per item"
        );
        assert_eq!(
            message(classification_report(&[], &[], 2)),
            "the list of truths and predictions is empty: nothing to score"
        );
        assert_eq!(
            message(classification_report(&[0], &[0], 0)),
            "n_classes = 0 is invalid: need at least one class"
        );
        assert_eq!(
            message(classification_report(&[0, 1], &[0, 3], 3)),
            "predictions[1] = 3 is out of range: with n_classes = 3 labels are 0..3"
        );
        assert!(matches!(
            classification_report(&[5], &[0], 3),
            Err(Error::LabelOutOfRange {
                what: "truths",
                index: 0,
                label: 5,
                ..
            })
        ));
        assert!(matches!(accuracy(&[], &[]), Err(Error::Empty { .. })));
        assert!(matches!(
            macro_f1_present(&[1], &[]),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = classification_report(&[0, 1, 1], &[0, 1, 0], 2).unwrap();
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"confusion\":[[1,0],[1,1]]"), "{json}");
        assert_eq!(
            serde_json::from_str::<ClassificationReport>(&json).unwrap(),
            report
        );
    }
}
