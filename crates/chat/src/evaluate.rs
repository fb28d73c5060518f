//! Scoring an intent model on a test split: accuracy, macro-F1, the per-intent report and the
//! confusion matrix (closed set: the best intent, threshold ignored, as Banking77 results are
//! reported), plus how the threshold does on in-scope and out-of-scope test texts.

use std::time::Instant;

use eval::classification::{ClassificationReport, classification_report};

use crate::data::IntentData;
use crate::error::{Result, invalid};
use crate::model::IntentModel;
use crate::training::{confidence_and_correct, oos_confidences, threshold_scores};

#[derive(Debug, Clone)]
pub struct Evaluation {
    pub report: ClassificationReport,
    /// With the threshold: share of in-scope test texts answered with the right intent, and of
    /// out-of-scope test texts rejected (None without such texts).
    pub in_scope_correct: f64,
    pub oos_rejected: Option<f64>,
    pub threshold: f32,
    /// Wall time of classifying the test texts.
    pub seconds: f64,
}

impl Evaluation {
    pub fn accuracy(&self) -> f64 {
        self.report.accuracy
    }

    pub fn macro_f1(&self) -> f64 {
        self.report.macro_avg.f1
    }
}

/// Classifies `data.test` (and `data.oos_test`) and scores the answers.
pub fn evaluate(model: &IntentModel, data: &IntentData) -> Result<Evaluation> {
    if data.test.is_empty() {
        return Err(invalid(format!("{} has no test examples", data.name)));
    }
    let started = Instant::now();
    let texts: Vec<&str> = data.test.iter().map(|e| e.text.as_str()).collect();
    let predictions = model.predict(&texts)?;
    let oos = oos_confidences(model, &data.oos_test)?;
    let seconds = started.elapsed().as_secs_f64();
    let truths: Vec<usize> = data.test.iter().map(|e| e.label).collect();
    let guesses: Vec<usize> = predictions.iter().map(|p| p.label).collect();
    let report = classification_report(&truths, &guesses, data.labels.len())?;
    let in_scope = confidence_and_correct(&predictions, &data.test);
    let threshold = model.threshold();
    let (in_scope_correct, rejected) = threshold_scores(&in_scope, &oos, threshold);
    Ok(Evaluation {
        report,
        in_scope_correct,
        oos_rejected: (!oos.is_empty()).then_some(rejected),
        threshold,
        seconds,
    })
}
