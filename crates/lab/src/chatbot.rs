//! Lesson 11, the customer-service chatbot: the `chat` crate's intent model (MiniLM, a linear
//! head, LoRA), its out-of-scope threshold, compressed attention, the dialogue and the HTTP
//! server, driven from a notebook on the CPU (or a GPU when the `cuda` feature is on).
//!
//! What the lesson writes by hand lives here, small: the softmax and top-k a prediction is made
//! of ([`softmax`], [`top_k`]), a few lines of HTTP/1.1 to talk to the server without a client
//! library ([`request`]), and the short training recipe a notebook can afford
//! ([`short_lora_settings`], [`few_per_intent`]). Everything else is the `chat` crate's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use chat::data::{Example, IntentData, SlotKind};
use chat::dialogue::{Dialogue, Turn, looks_like};
use chat::evaluate::Evaluation;
use chat::model::{IntentModel, Prediction};
use chat::training::{LoraSettings, TrainSettings, choose_threshold, threshold_scores};
use compress::{Method, Plan, RankRule};
use eval::classification::classification_report;
use ndarray::Array2;
use rand::Rng;

use crate::LessonResult;
pub use crate::design_space::minilm_dir;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "11-softmax-confidence",
        lesson: "11-chatbot",
        title: "Probabilities and the top three intents",
        task: "Given the head's logits for one text, return the softmax probabilities and the \
               indices of the three most likely intents, best first (fewer when there are fewer \
               intents). Logits can be large: the answer must stay finite.",
        hint: "subtract the largest logit before exp (softmax does not change), divide by the sum; \
               sort indices by probability, descending",
        template: "fn answer(logits: &[f32]) -> (Vec<f32>, Vec<usize>) {\n    todo!()\n}\n",
        checker: "lab::chatbot::check_softmax_confidence",
        self_test: || SelfTest {
            reference: check_softmax_confidence(|logits| {
                let p = softmax(logits);
                let top = top_k(&p, 3);
                (p, top)
            }),
            wrong: check_softmax_confidence(|logits| {
                // No shift by the maximum: exp overflows on large logits.
                let e: Vec<f32> = logits.iter().map(|x| x.exp()).collect();
                let sum: f32 = e.iter().sum();
                let p: Vec<f32> = e.iter().map(|x| x / sum).collect();
                let top = top_k(&p, 3);
                (p, top)
            }),
        },
    },
    Exercise {
        id: "11-choose-threshold",
        lesson: "11-chatbot",
        title: "The out-of-scope threshold",
        task: "in_scope holds (confidence, was the top intent right?) for in-scope validation texts, \
               oos the confidences of out-of-scope ones. Return a threshold t maximizing the mean of \
               (share of in-scope texts right with confidence ≥ t) and (share of out-of-scope texts \
               with confidence < t).",
        hint: "only the observed confidences (and 0) are worth trying as t; score each and keep the best",
        template: "fn answer(in_scope: &[(f32, bool)], oos: &[f32]) -> f32 {\n    todo!()\n}\n",
        checker: "lab::chatbot::check_choose_threshold",
        self_test: || SelfTest {
            reference: check_choose_threshold(|in_scope, oos| {
                choose_threshold(in_scope, oos, 0.98)
            }),
            wrong: check_choose_threshold(|in_scope, _| {
                // Only looks at the in-scope side: answering everything is always "best".
                in_scope
                    .iter()
                    .map(|(c, _)| *c)
                    .fold(f32::INFINITY, f32::min)
            }),
        },
    },
    Exercise {
        id: "11-macro-f1",
        lesson: "11-chatbot",
        title: "Macro-F1 over every intent",
        task: "Return the macro-averaged F1 of predicted against true labels over the classes \
               0..n_classes, as scikit-learn's f1_score(average='macro', labels=range(n), \
               zero_division=0): the plain mean of per-class F1, a class never true nor predicted \
               scoring 0.",
        hint: "per class: precision = tp/(tp+fp), recall = tp/(tp+fn), F1 = 2pr/(p+r), each 0 when \
               its denominator is 0; average over all n_classes, present or not",
        template: "fn answer(truths: &[usize], predictions: &[usize], n_classes: usize) -> f64 {\n    todo!()\n}\n",
        checker: "lab::chatbot::check_macro_f1",
        self_test: || SelfTest {
            reference: check_macro_f1(|t, p, n| {
                eval::classification::macro_f1(t, p, n).unwrap_or(f64::NAN)
            }),
            wrong: check_macro_f1(|t, p, _| {
                // Averages over the labels that occur only.
                eval::classification::macro_f1_present(t, p).unwrap_or(f64::NAN)
            }),
        },
    },
    Exercise {
        id: "11-slot-date",
        lesson: "11-chatbot",
        title: "Does the answer look like a date?",
        task: "The bot asked for a date. Return whether the reply could be one: it has a digit, or a \
               whole word naming a day, month or relative day (\"monday\", \"march\", \"mar\", \
               \"yesterday\", \"today\", \"week\", …; a plural s is fine), case ignored.",
        hint: "lower-case, split on anything not alphanumeric, and compare whole words: \"decide\" \
               must not match \"dec\"; chat::dialogue::looks_like holds the word list",
        template: "fn answer(reply: &str) -> bool {\n    todo!()\n}\n",
        checker: "lab::chatbot::check_slot_date",
        self_test: || SelfTest {
            reference: check_slot_date(|reply| looks_like(SlotKind::Date, reply)),
            wrong: check_slot_date(|reply| reply.chars().any(|c| c.is_ascii_digit())),
        },
    },
];

/// `exp(x_i − max x) / Σ_j exp(x_j − max x)`: the softmax, shifted so no `exp` overflows.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

/// Indices of the `k` largest values, largest first (ties: the lower index first).
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order
}

/// Whether the full training recipe was asked for (`LOWRANK_FULL=1`).
pub fn full_run() -> bool {
    std::env::var("LOWRANK_FULL").is_ok_and(|v| v == "1")
}

/// The LoRA recipe: `chat`'s default (r 16, α 32, every linear layer, 10 epochs) when `full`,
/// else a taste a notebook on a CPU can afford: r 8 on query and value, one epoch.
pub fn short_lora_settings(full: bool) -> TrainSettings {
    if full {
        return TrainSettings::default();
    }
    TrainSettings {
        lora: Some(LoraSettings {
            r: 8,
            alpha: 16.0,
            targets: vec!["query".into(), "value".into()],
            dropout: 0.1,
        }),
        epochs: 1,
        batch_size: 16,
        ..TrainSettings::default()
    }
}

/// `data` with only the first `per_intent` training examples of each intent (validation, test
/// and out-of-scope texts untouched): a few fine-tuning steps instead of an epoch's worth.
pub fn few_per_intent(data: &IntentData, per_intent: usize) -> IntentData {
    let mut counts = vec![0; data.labels.len()];
    let train: Vec<Example> = data
        .train
        .iter()
        .filter(|e| {
            let seen = counts.get_mut(e.label).map_or(usize::MAX, |c| {
                *c += 1;
                *c
            });
            seen <= per_intent
        })
        .cloned()
        .collect();
    IntentData {
        name: format!("{} ({per_intent} per intent)", data.name),
        train,
        ..data.clone()
    }
}

/// Whitened SVD (SVD-LLM) of every attention projection of `model`'s encoder at one rank that
/// keeps `keep` of each matrix's weights, calibrated on `texts` (one text per pass, so no padding
/// enters the statistics). A notebook-sized version of `lowrank chat eval --compress-attention`,
/// which also measures each layer's damage and gives each its own rank.
pub fn compress_attention(
    model: &mut IntentModel,
    texts: &[&str],
    keep: f64,
) -> LessonResult<compress::Report> {
    let plan = Plan::new(RankRule::ParamRatio(keep))
        .select(["*.attention.*"])
        .with_method("whitened".parse::<Method>()?);
    let encoder = model.encoder_mut();
    let calibration = compress::calibrate(encoder, &plan, |m| {
        for text in texts {
            m.embed(&[*text])?;
        }
        Ok(())
    })?;
    Ok(compress::compress_model_calibrated(
        encoder,
        &plan,
        &calibration,
    )?)
}

/// One exchange without HTTP: the model classifies `message`, the dialogue answers it in
/// session `session_id` (what the server does for each request).
pub fn converse(
    model: &IntentModel,
    dialogue: &mut Dialogue,
    session_id: &str,
    message: &str,
) -> LessonResult<(Prediction, Turn)> {
    let prediction = model
        .predict(&[message])?
        .into_iter()
        .next()
        .ok_or("the model returned no prediction")?;
    let turn = dialogue.respond(session_id, message, &prediction);
    Ok((prediction, turn))
}

/// The confusion matrix as shares of each true intent, rows labelled `name number`.
pub fn confusion_heatmap(evaluation: &Evaluation, labels: &[String]) -> viz::Heatmap {
    let confusion = &evaluation.report.confusion;
    let n = confusion.len();
    let matrix = Array2::from_shape_fn((n, n), |(i, j)| {
        let row: usize = confusion[i].iter().sum();
        confusion[i][j] as f64 / row.max(1) as f64
    });
    let numbers: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let rows: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} {i}"))
        .collect();
    let side = 300 + 22 * n as u32;
    viz::Heatmap::new(
        "Confusion matrix (share of each true intent)",
        matrix.view(),
    )
    .x_label("predicted intent (number)")
    .y_label("true intent")
    .row_labels(&rows)
    .col_labels(&numbers)
    .range(0.0, 1.0)
    .size(side + 320, side)
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): the status code and the
/// body. Enough HTTP to talk to the chat server; a real client would use a library.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> LessonResult<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("the response has no blank line after its headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// `POST /v1/chat` with `{"session_id": …, "message": …}`.
pub fn post_chat(addr: SocketAddr, session_id: &str, message: &str) -> LessonResult<(u16, String)> {
    let body = format!(
        "{{\"session_id\": {}, \"message\": {}}}",
        json_string(session_id),
        json_string(message)
    );
    request(addr, "POST", "/v1/chat", &body)
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Confidences of in-scope texts (and whether the top intent was right) and of out-of-scope ones,
/// built from formulas so numpy can rebuild them: the chapter's threshold example.
pub fn formula_scores() -> (Vec<(f32, bool)>, Vec<f32>) {
    let in_scope = (0..60)
        .map(|i| {
            let right = i % 4 != 0;
            let base = if right { 0.55 } else { 0.25 };
            (base + 0.45 * (1.3 * i as f32).sin().powi(2), right)
        })
        .collect();
    let oos = (0..20)
        .map(|i| 0.1 + 0.55 * (0.7 * i as f32).cos().abs())
        .collect();
    (in_scope, oos)
}

/// The chapter's figure: how the threshold trades in-scope answers for out-of-scope rejections on
/// [`formula_scores`], and where the calibrated threshold falls.
pub fn figures(out: &Path) -> LessonResult<()> {
    let (in_scope, oos) = formula_scores();
    let ts: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
    let (mut answered, mut rejected, mut balanced) = (Vec::new(), Vec::new(), Vec::new());
    for &t in &ts {
        let (a, r) = threshold_scores(&in_scope, &oos, t as f32);
        answered.push(a);
        rejected.push(r);
        balanced.push((a + r) / 2.0);
    }
    let chosen = f64::from(choose_threshold(&in_scope, &oos, 0.98));
    viz::Plot::new(format!(
        "Choosing the out-of-scope threshold (chosen: {chosen:.3})"
    ))
    .x_label("threshold t")
    .y_label("share")
    .line("in-scope answered right", &ts, &answered)
    .line("out-of-scope rejected", &ts, &rejected)
    .line("their mean", &ts, &balanced)
    .save(out.join("11-threshold.svg"))?;
    Ok(())
}

/// Checks `answer(logits)` against candle's softmax and `chat::model::prediction`'s ranking.
pub fn check_softmax_confidence(answer: impl Fn(&[f32]) -> (Vec<f32>, Vec<usize>)) -> Verdict {
    let mut rng = exercise::rng(111);
    let mut cases: Vec<Vec<f32>> = vec![
        vec![2.0, 1.0, 0.1],
        vec![0.0],
        vec![1.0, 3.0],
        vec![1000.0, 999.0, 0.0, -5.0],
        vec![-800.0, -801.0, -799.0, -850.0, -700.0],
    ];
    for _ in 0..30 {
        let n = rng.random_range(3..30);
        let scale = if rng.random_bool(0.3) { 200.0 } else { 5.0 };
        cases.push((0..n).map(|_| rng.random_range(-scale..scale)).collect());
    }
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |logits| answer(logits),
        |logits, (p, top)| {
            let want = candle_nn::ops::softmax_last_dim(
                &candle_core::Tensor::new(logits.as_slice(), &candle_core::Device::Cpu)
                    .map_err(|e| e.to_string())?,
            )
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())?;
            let what = format!("logits {logits:?}");
            if p.len() != want.len() {
                return Err(format!(
                    "{what}: you returned {} probabilities, expected {}",
                    p.len(),
                    want.len()
                ));
            }
            for (i, (&g, &w)) in p.iter().zip(&want).enumerate() {
                exercise::close(
                    &format!("{what}: probability {i}"),
                    f64::from(g),
                    f64::from(w),
                    1e-5,
                )?;
            }
            let ranked = chat::model::prediction(want, 0.0);
            let mut expected = vec![ranked.label];
            expected.extend(ranked.alternatives.iter().take(2).map(|&(i, _)| i));
            exercise::equal(&format!("{what}: top three"), top, expected)
        },
    )
}

/// Checks `answer(in_scope, oos)` by the score its threshold reaches, against
/// `chat::training::choose_threshold`'s (any threshold as good as the best passes).
pub fn check_choose_threshold(answer: impl Fn(&[(f32, bool)], &[f32]) -> f32) -> Verdict {
    let mut rng = exercise::rng(112);
    let (in_scope, oos) = formula_scores();
    let mut cases = vec![
        (in_scope, oos),
        (vec![(0.9, true), (0.8, true), (0.3, false)], vec![0.5, 0.2]),
        (vec![(0.6, true)], vec![0.9]),
    ];
    for _ in 0..25 {
        let n = rng.random_range(2..60);
        let in_scope = (0..n)
            .map(|_| (rng.random_range(0.05..1.0_f32), rng.random_bool(0.8)))
            .collect();
        let oos = (0..rng.random_range(1..30))
            .map(|_| rng.random_range(0.05..0.95_f32))
            .collect();
        cases.push((in_scope, oos));
    }
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |(in_scope, oos)| answer(in_scope, oos),
        |(in_scope, oos), t| {
            let score = |t: f32| {
                let (correct, rejected) = threshold_scores(in_scope, oos, t);
                (correct + rejected) / 2.0
            };
            let best = choose_threshold(in_scope, oos, 0.98);
            let what = format!(
                "{} in-scope and {} out-of-scope confidences: the mean of answered-right and rejected at your threshold {t}",
                in_scope.len(),
                oos.len()
            );
            exercise::close(&what, score(t), score(best), 1e-9)
        },
    )
}

/// Checks `answer(truths, predictions, n_classes)` against `eval::classification`.
pub fn check_macro_f1(answer: impl Fn(&[usize], &[usize], usize) -> f64) -> Verdict {
    let mut rng = exercise::rng(113);
    let mut cases: Vec<(Vec<usize>, Vec<usize>, usize)> = vec![
        (vec![0, 1, 2, 0], vec![0, 2, 2, 0], 3),
        (vec![0, 0, 1], vec![0, 0, 1], 4),
        (vec![1, 1], vec![0, 0], 2),
    ];
    for _ in 0..30 {
        let n_classes = rng.random_range(2..12);
        let len = rng.random_range(1..80);
        // The last class never occurs, as in a test split that misses an intent.
        let truths: Vec<usize> = (0..len)
            .map(|_| rng.random_range(0..n_classes - 1))
            .collect();
        let predictions = truths
            .iter()
            .map(|&t| {
                if rng.random_bool(0.7) {
                    t
                } else {
                    rng.random_range(0..n_classes - 1)
                }
            })
            .collect();
        cases.push((truths, predictions, n_classes));
    }
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |(t, p, n)| answer(t, p, *n),
        |(t, p, n), got| {
            let want = classification_report(t, p, *n)
                .map_err(|e| e.to_string())?
                .macro_avg
                .f1;
            exercise::close(
                &format!("truths {t:?}, predictions {p:?}, {n} classes"),
                got,
                want,
                1e-9,
            )
        },
    )
}

/// Checks `answer(reply)` against `chat::dialogue::looks_like(SlotKind::Date, …)`.
pub fn check_slot_date(answer: impl Fn(&str) -> bool) -> Verdict {
    let cases: Vec<String> = [
        "on the 3rd of March",
        "last tuesday",
        "Yesterday",
        "two weeks ago",
        "12/05",
        "in December",
        "early dec",
        "I can't decide",
        "no idea",
        "around Mondays",
        "sometime last month",
        "",
        "the day before",
        "mar",
        "marmalade",
        "a while ago",
        "TODAY!",
        "hmm, maybe",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Checker::new(EXERCISES[3].id, EXERCISES[3].hint, cases).run(
        |reply| answer(reply),
        |reply, got| {
            exercise::equal(
                &format!("reply {reply:?}"),
                got,
                looks_like(SlotKind::Date, reply),
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_softmax_and_top_k_match_candle_and_the_model() {
        let logits = [1.5_f32, -0.3, 4.0, 4.0, 0.0];
        let ours = softmax(&logits);
        let tensor = candle_core::Tensor::new(&logits, &candle_core::Device::Cpu).unwrap();
        let candle = candle_nn::ops::softmax_last_dim(&tensor)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&candle) {
            assert!((a - b).abs() < 1e-6);
        }
        let ranked = chat::model::prediction(ours.clone(), 0.0);
        assert_eq!(
            top_k(&ours, 3),
            [
                ranked.label,
                ranked.alternatives[0].0,
                ranked.alternatives[1].0
            ]
        );
        assert!(softmax(&[1000.0, 0.0]).iter().all(|p| p.is_finite()));
    }

    #[test]
    fn few_per_intent_keeps_the_first_examples_of_each_intent() {
        let data = chat::data::Catalog::embedded().unwrap().split();
        let few = few_per_intent(&data, 3);
        assert_eq!(few.train.len(), 3 * data.labels.len());
        assert!(few.train_counts().iter().all(|&c| c == 3));
        assert_eq!(few.test, data.test);
    }

    #[test]
    fn json_strings_escape_quotes_and_control_characters() {
        assert_eq!(json_string("a \"b\"\n\\"), "\"a \\\"b\\\"\\n\\\\\"");
        assert_eq!(json_string("\u{1}"), "\"\\u0001\"");
    }
}
