//! The unigram-overlap score and the lead-k baseline on hand-computed cases: clipping, empty
//! texts (0, never NaN), Unicode tokens, averaging over pairs.

#![allow(clippy::unwrap_used)]

use eval::Error;
use eval::overlap::{Overlap, lead_k, mean_unigram_overlap, tokens, unigram_overlap};

/// `candidate` against `reference` scores (precision, recall, F1), each to 1e-12.
fn check(candidate: &str, reference: &str, expected: (f64, f64, f64)) {
    let score = unigram_overlap(candidate, reference);
    let actual = (score.precision, score.recall, score.f1);
    for (name, a, e) in [
        ("precision", actual.0, expected.0),
        ("recall", actual.1, expected.1),
        ("f1", actual.2, expected.2),
    ] {
        assert!(
            a.is_finite() && (a - e).abs() < 1e-12,
            "{name} of {candidate:?} against {reference:?}: {a}, expected {e}"
        );
    }
}

fn f1(precision: f64, recall: f64) -> f64 {
    2.0 * precision * recall / (precision + recall)
}

#[test]
fn tokens_are_lowercased_alphanumeric_runs() {
    assert_eq!(
        tokens("Anna's card (order #A-1234) hasn't arrived!"),
        [
            "anna", "s", "card", "order", "a", "1234", "hasn", "t", "arrived"
        ]
    );
    assert_eq!(tokens("€42.50"), ["42", "50"]);
    assert_eq!(tokens("  \n\t ... "), Vec::<String>::new());
}

#[test]
fn matches_are_counted_once_per_occurrence() {
    // Candidate: the card was sent (4); reference: the new card was sent to berlin (7). All 4 match.
    check(
        "The card was sent.",
        "The new card was sent to Berlin",
        (1.0, 4.0 / 7.0, f1(1.0, 4.0 / 7.0)),
    );
    // Repeating a matching word earns one match per occurrence in the reference: "refund" ×4
    // against one "refund" is 1 match of 4 candidate tokens and 1 of 2 reference tokens.
    check(
        "refund refund refund refund",
        "refund issued",
        (0.25, 0.5, f1(0.25, 0.5)),
    );
    // Two in the reference allow two.
    check("card card", "card, card and PIN", (1.0, 0.5, f1(1.0, 0.5)));
    // Casing and punctuation do not matter.
    check("BERLIN!", "berlin", (1.0, 1.0, 1.0));
    // Nothing in common.
    check("refund", "new card", (0.0, 0.0, 0.0));
}

#[test]
fn empty_texts_score_zero_without_nan() {
    check("", "the card arrived", (0.0, 0.0, 0.0));
    check("the card arrived", "", (0.0, 0.0, 0.0));
    check("", "", (0.0, 0.0, 0.0));
    check("?!", "...", (0.0, 0.0, 0.0));
}

#[test]
fn unicode_letters_are_tokens_and_lowercase_across_scripts() {
    check("Überweisung gesendet", "die überweisung", (0.5, 0.5, 0.5));
    // No spaces in Japanese: the whole run is one token, matched as one.
    check(
        "カードが届きません。",
        "カードが届きません",
        (1.0, 1.0, 1.0),
    );
    // Emoji separate tokens and are dropped; Greek lowercases (Σ → σ).
    check("😀ΣΟΦΙΑ😀 paid", "σοφια", (0.5, 1.0, f1(0.5, 1.0)));
}

#[test]
fn the_mean_averages_each_measure_over_pairs() {
    let pairs = [
        ("The card was sent.", "The new card was sent to Berlin"),
        ("refund", "new card"),
        ("", ""),
        ("BERLIN!", "berlin"),
    ];
    let mean = mean_unigram_overlap(&pairs).unwrap();
    let scores: Vec<Overlap> = pairs
        .iter()
        .map(|(candidate, reference)| unigram_overlap(candidate, reference))
        .collect();
    let average = |field: fn(&Overlap) -> f64| scores.iter().map(field).sum::<f64>() / 4.0;
    assert!((mean.precision - average(|s| s.precision)).abs() < 1e-12);
    assert!((mean.recall - average(|s| s.recall)).abs() < 1e-12);
    assert!((mean.f1 - average(|s| s.f1)).abs() < 1e-12);
    // By hand: precision (1 + 0 + 0 + 1) / 4, recall (4/7 + 0 + 0 + 1) / 4.
    assert!((mean.precision - 0.5).abs() < 1e-12);
    assert!((mean.recall - (4.0 / 7.0 + 1.0) / 4.0).abs() < 1e-12);

    let error = mean_unigram_overlap(&[]).unwrap_err();
    assert!(matches!(error, Error::Empty { .. }), "{error}");
}

#[test]
fn lead_k_takes_the_first_words_of_the_dialogue() {
    let dialogue = "Anna: Hi, my card\nhas not arrived.\nTom:  Sorry to hear that!";
    assert_eq!(lead_k(dialogue, 4), "Anna: Hi, my card");
    assert_eq!(lead_k(dialogue, 6), "Anna: Hi, my card has not");
    assert_eq!(lead_k(dialogue, 0), "");
    assert_eq!(
        lead_k(dialogue, 100),
        "Anna: Hi, my card has not arrived. Tom: Sorry to hear that!"
    );
    assert_eq!(lead_k("", 3), "");
    // As a baseline against a reference summary it scores, but not perfectly.
    let reference = "Anna's card has not arrived; Tom sends a new one.";
    let score = unigram_overlap(&lead_k(dialogue, 8), reference);
    assert!(score.f1 > 0.0 && score.f1 < 1.0, "{score:?}");
}
