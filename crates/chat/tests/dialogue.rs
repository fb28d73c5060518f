//! The conversation policy on hand-made predictions: answers, slot questions, clarification,
//! rephrase and hand-off, and the session store (independence, expiry, least-recently-used
//! eviction). No model is needed: `chat::model::prediction` turns probability vectors into
//! predictions as the model's output would be.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chat::data::{Catalog, SlotKind};
use chat::dialogue::{Action, Dialogue, Policy, Turn, looks_like};
use chat::model::{Prediction, prediction};

const THRESHOLD: f32 = 0.3;

fn labels() -> Vec<String> {
    Catalog::embedded()
        .unwrap()
        .intents
        .iter()
        .map(|i| i.name.clone())
        .collect()
}

fn dialogue(policy: Policy) -> Dialogue {
    Dialogue::new(&Catalog::embedded().unwrap(), &labels(), policy)
}

fn index(name: &str) -> usize {
    labels()
        .iter()
        .position(|l| l == name)
        .unwrap_or_else(|| panic!("no intent {name}"))
}

/// `p` on `name`, the rest spread evenly over the other intents.
fn confident(name: &str, p: f32) -> Prediction {
    let n = labels().len();
    let mut probs = vec![(1.0 - p) / (n - 1) as f32; n];
    probs[index(name)] = p;
    prediction(probs, THRESHOLD)
}

/// Two intents close together (0.45 and 0.40), the rest spread evenly.
fn close(first: &str, second: &str) -> Prediction {
    let n = labels().len();
    let mut probs = vec![0.15 / (n - 2) as f32; n];
    probs[index(first)] = 0.45;
    probs[index(second)] = 0.40;
    prediction(probs, THRESHOLD)
}

/// Nothing stands out: every intent equally likely, below the threshold.
fn unsure() -> Prediction {
    let n = labels().len();
    prediction(vec![1.0 / n as f32; n], THRESHOLD)
}

fn reply_of(name: &str) -> String {
    Catalog::embedded()
        .unwrap()
        .intent(name)
        .unwrap()
        .reply
        .clone()
}

fn prompt_of(name: &str, slot: usize) -> String {
    Catalog::embedded().unwrap().intent(name).unwrap().slots[slot]
        .prompt
        .clone()
}

fn assert_turn(turn: &Turn, action: Action, intent: Option<&str>) {
    assert_eq!(turn.action, action, "{turn:?}");
    assert_eq!(turn.intent.as_deref(), intent, "{turn:?}");
}

/// Starts card_arrival in `session` at `now`: the bot asks for the order date.
fn ask_order_date(d: &mut Dialogue, session: &str, now: Instant) {
    let turn = d.respond_at(
        session,
        "my card hasn't come",
        &confident("card_arrival", 0.9),
        now,
    );
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
}

// ---------------------------------------------------------------------------------------------
// Answers and slots

#[test]
fn intent_without_slots_is_answered_with_its_reply() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond(
        "s",
        "what does a transfer cost",
        &confident("transfer_fee", 0.9),
    );
    assert_turn(&turn, Action::Answer, Some("transfer_fee"));
    assert_eq!(turn.reply, reply_of("transfer_fee"));
    assert!(!turn.handoff());
}

#[test]
fn card_arrival_asks_the_order_date_then_answers_with_it() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond("s", "where is my card", &confident("card_arrival", 0.9));
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
    assert_eq!(turn.reply, prompt_of("card_arrival", 0));
    let turn = d.respond("s", "last Tuesday", &unsure());
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
    assert!(
        turn.reply.contains("ordered on last Tuesday"),
        "{}",
        turn.reply
    );
    assert!(!turn.reply.contains('{'), "{}", turn.reply);
}

#[test]
fn non_date_answer_is_asked_again_then_answered_with_a_stand_in() {
    let mut d = dialogue(Policy::default());
    assert_eq!(d.policy().max_slot_attempts, 2);
    d.respond("s", "where is my card", &confident("card_arrival", 0.9));
    let turn = d.respond("s", "no idea", &unsure());
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
    assert_eq!(turn.reply, prompt_of("card_arrival", 0));
    let turn = d.respond("s", "no idea", &unsure());
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
    assert!(
        turn.reply.contains("ordered on that date"),
        "{}",
        turn.reply
    );
}

#[test]
fn two_slots_are_asked_in_order_and_both_filled() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond(
        "s",
        "my transfer never arrived",
        &confident("transfer_not_received", 0.9),
    );
    assert_turn(&turn, Action::AskSlot, Some("transfer_not_received"));
    assert_eq!(turn.reply, prompt_of("transfer_not_received", 0));
    let turn = d.respond("s", "yesterday", &unsure());
    assert_turn(&turn, Action::AskSlot, Some("transfer_not_received"));
    assert_eq!(turn.reply, prompt_of("transfer_not_received", 1));
    let turn = d.respond("s", "€250", &unsure());
    assert_turn(&turn, Action::Answer, Some("transfer_not_received"));
    assert!(
        turn.reply.contains("A transfer of €250 sent on yesterday"),
        "{}",
        turn.reply
    );
}

#[test]
fn text_and_amount_slots_of_wrong_charge_fill_their_placeholders() {
    let mut d = dialogue(Policy::default());
    d.respond(
        "s",
        "I don't recognise a payment",
        &confident("wrong_charge", 0.9),
    );
    let turn = d.respond("s", "ACME Ltd", &unsure());
    assert_eq!(turn.reply, prompt_of("wrong_charge", 1));
    let turn = d.respond("s", "12.50", &unsure());
    assert_turn(&turn, Action::Answer, Some("wrong_charge"));
    assert!(
        turn.reply.contains("the 12.50 payment to ACME Ltd"),
        "{}",
        turn.reply
    );
}

#[test]
fn confident_other_intent_during_a_slot_question_changes_the_subject() {
    let mut d = dialogue(Policy::default());
    d.respond("s", "where is my card", &confident("card_arrival", 0.9));
    let turn = d.respond(
        "s",
        "how much is a transfer",
        &confident("transfer_fee", 0.9),
    );
    assert_turn(&turn, Action::Answer, Some("transfer_fee"));
    assert_eq!(turn.reply, reply_of("transfer_fee"));
    // The card_arrival question is gone: a date now is just an unclear message.
    let turn = d.respond("s", "last Tuesday", &unsure());
    assert_turn(&turn, Action::Rephrase, None);
}

#[test]
fn confident_other_intent_with_slots_during_a_slot_question_asks_its_slot() {
    let mut d = dialogue(Policy::default());
    d.respond("s", "where is my card", &confident("card_arrival", 0.9));
    let turn = d.respond("s", "I want to top up", &confident("top_up_failed", 0.9));
    assert_turn(&turn, Action::AskSlot, Some("top_up_failed"));
    assert_eq!(turn.reply, prompt_of("top_up_failed", 0));
}

#[test]
fn unknown_label_gets_a_generic_reply_naming_it() {
    let mut names = labels();
    names.push("crypto_wallet".into());
    let mut d = Dialogue::new(&Catalog::embedded().unwrap(), &names, Policy::default());
    let mut probs = vec![0.0; names.len()];
    probs[names.len() - 1] = 1.0;
    let turn = d.respond("s", "bitcoin?", &prediction(probs, THRESHOLD));
    assert_turn(&turn, Action::Answer, Some("crypto_wallet"));
    assert!(turn.reply.contains("crypto wallet"), "{}", turn.reply);
}

// ---------------------------------------------------------------------------------------------
// Clarification

#[test]
fn close_intents_ask_which_one_naming_both() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond(
        "s",
        "my card",
        &close("card_arrival", "card_lost_or_stolen"),
    );
    assert_turn(&turn, Action::Clarify, Some("card_arrival"));
    assert!(turn.reply.contains("card arrival"), "{}", turn.reply);
    assert!(turn.reply.contains("card lost or stolen"), "{}", turn.reply);
}

/// Clarifies card_arrival (1) against card_lost_or_stolen (2), then sends `answer`.
fn answer_clarification(answer: &str) -> Turn {
    let mut d = dialogue(Policy::default());
    d.respond(
        "s",
        "my card",
        &close("card_arrival", "card_lost_or_stolen"),
    );
    d.respond("s", answer, &unsure())
}

#[test]
fn clarification_answered_2_picks_the_second() {
    let turn = answer_clarification("2");
    assert_turn(&turn, Action::AskSlot, Some("card_lost_or_stolen"));
    assert_eq!(turn.reply, prompt_of("card_lost_or_stolen", 0));
}

#[test]
fn clarification_answered_the_first_one_picks_the_first() {
    let turn = answer_clarification("the first one");
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
    assert_eq!(turn.reply, prompt_of("card_arrival", 0));
}

#[test]
fn clarification_answered_with_a_name_picks_that_intent() {
    let turn = answer_clarification("Card lost or stolen, please");
    assert_turn(&turn, Action::AskSlot, Some("card_lost_or_stolen"));
    let turn = answer_clarification("card arrival");
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
}

#[test]
fn clarification_answered_the_second_one_picks_the_second() {
    let turn = answer_clarification("the second one");
    assert_turn(&turn, Action::AskSlot, Some("card_lost_or_stolen"));
}

#[test]
fn clarification_answered_with_the_second_name_and_one_picks_the_second() {
    let turn = answer_clarification("the card lost or stolen one");
    assert_turn(&turn, Action::AskSlot, Some("card_lost_or_stolen"));
}

#[test]
fn clarification_reply_that_picks_neither_is_a_new_message() {
    let mut d = dialogue(Policy::default());
    d.respond(
        "s",
        "my card",
        &close("card_arrival", "card_lost_or_stolen"),
    );
    let turn = d.respond(
        "s",
        "actually, it was declined",
        &confident("card_declined", 0.9),
    );
    assert_turn(&turn, Action::Answer, Some("card_declined"));
    assert_eq!(turn.reply, reply_of("card_declined"));
    // The question is over: "1" now is just an unclear message.
    let turn = d.respond("s", "1", &unsure());
    assert_turn(&turn, Action::Rephrase, None);
}

// ---------------------------------------------------------------------------------------------
// Out of scope and hand-off

#[test]
fn out_of_scope_asks_to_rephrase_then_hands_off_the_second_time() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond("s", "what's the weather", &unsure());
    assert_turn(&turn, Action::Rephrase, None);
    assert!(!turn.handoff());
    let turn = d.respond("s", "will it rain", &unsure());
    assert_turn(&turn, Action::Handoff, None);
    assert!(turn.handoff());
}

#[test]
fn in_scope_message_resets_the_out_of_scope_count() {
    let mut d = dialogue(Policy::default());
    assert_eq!(
        d.respond("s", "weather?", &unsure()).action,
        Action::Rephrase
    );
    assert_eq!(
        d.respond("s", "fees?", &confident("transfer_fee", 0.9))
            .action,
        Action::Answer
    );
    assert_eq!(d.respond("s", "rain?", &unsure()).action, Action::Rephrase);
    assert_eq!(d.respond("s", "snow?", &unsure()).action, Action::Handoff);
}

#[test]
fn human_agent_intent_hands_off_with_its_reply() {
    let mut d = dialogue(Policy::default());
    let turn = d.respond(
        "s",
        "let me talk to a person",
        &confident("human_agent", 0.9),
    );
    assert_turn(&turn, Action::Handoff, Some("human_agent"));
    assert!(turn.handoff());
    assert_eq!(turn.reply, reply_of("human_agent"));
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn sessions_are_independent() {
    let mut d = dialogue(Policy::default());
    let t0 = Instant::now();
    ask_order_date(&mut d, "a", t0);
    assert_eq!(
        d.respond_at("b", "weather?", &unsure(), t0).action,
        Action::Rephrase
    );
    // b's misunderstanding does not count for a, nor a's slot for b.
    let turn = d.respond_at("a", "last Tuesday", &unsure(), t0);
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
    assert_eq!(
        d.respond_at("b", "rain?", &unsure(), t0).action,
        Action::Handoff
    );
    assert_eq!(d.sessions(), 2);
}

#[test]
fn session_silent_longer_than_ttl_starts_fresh() {
    let policy = Policy::default();
    let mut d = dialogue(policy);
    let t0 = Instant::now();
    ask_order_date(&mut d, "s", t0);
    let later = t0 + policy.session_ttl + Duration::from_secs(1);
    let turn = d.respond_at("s", "last Tuesday", &unsure(), later);
    assert_turn(&turn, Action::Rephrase, None);
}

#[test]
fn session_within_ttl_keeps_its_pending_slot() {
    let policy = Policy::default();
    let mut d = dialogue(policy);
    let t0 = Instant::now();
    ask_order_date(&mut d, "s", t0);
    let later = t0 + policy.session_ttl - Duration::from_secs(1);
    let turn = d.respond_at("s", "last Tuesday", &unsure(), later);
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
}

#[test]
fn expire_removes_old_sessions_and_returns_the_count() {
    let policy = Policy::default();
    let mut d = dialogue(policy);
    let t0 = Instant::now();
    d.respond_at("old1", "hi", &confident("greeting", 0.9), t0);
    d.respond_at(
        "old2",
        "hi",
        &confident("greeting", 0.9),
        t0 + Duration::from_secs(60),
    );
    d.respond_at(
        "new",
        "hi",
        &confident("greeting", 0.9),
        t0 + policy.session_ttl,
    );
    assert_eq!(d.sessions(), 3);
    let now = t0 + policy.session_ttl + Duration::from_secs(61);
    assert_eq!(d.expire(now), 2);
    assert_eq!(d.sessions(), 1);
    assert_eq!(d.expire(now), 0);
}

#[test]
fn fourth_session_evicts_the_least_recently_used() {
    let mut d = dialogue(Policy {
        max_sessions: 3,
        ..Policy::default()
    });
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    ask_order_date(&mut d, "a", at(0));
    ask_order_date(&mut d, "b", at(1));
    ask_order_date(&mut d, "c", at(2));
    // a is used again (a non-date answer: the question stays pending), so b is now the oldest.
    let turn = d.respond_at("a", "hmm", &unsure(), at(3));
    assert_turn(&turn, Action::AskSlot, Some("card_arrival"));
    d.respond_at("d", "hi", &confident("greeting", 0.9), at(4));
    assert_eq!(d.sessions(), 3);
    // a and c still wait for their date; b was evicted and starts fresh.
    let turn = d.respond_at("a", "last Tuesday", &unsure(), at(5));
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
    let turn = d.respond_at("c", "last Tuesday", &unsure(), at(6));
    assert_turn(&turn, Action::Answer, Some("card_arrival"));
    let turn = d.respond_at("b", "last Tuesday", &unsure(), at(7));
    assert_turn(&turn, Action::Rephrase, None);
    assert_eq!(d.sessions(), 3);
}

// ---------------------------------------------------------------------------------------------
// looks_like

#[test]
fn date_accepts_numbers_and_date_words() {
    for value in [
        "last Tuesday",
        "3 days ago",
        "12/03/2024",
        "yesterday",
        "in March",
        "2nd",
    ] {
        assert!(looks_like(SlotKind::Date, value), "{value:?}");
    }
}

#[test]
fn date_rejects_answers_without_a_date() {
    for value in ["no idea", "I don't know", "", "   ", "not sure, sorry"] {
        assert!(!looks_like(SlotKind::Date, value), "{value:?}");
    }
}

#[test]
fn date_rejects_words_that_only_begin_like_a_month() {
    for value in ["maybe", "I can't decide", "at the market"] {
        assert!(!looks_like(SlotKind::Date, value), "{value:?}");
    }
}

#[test]
fn amount_needs_a_digit() {
    for value in ["€250", "12.50", "about 30 pounds"] {
        assert!(looks_like(SlotKind::Amount, value), "{value:?}");
    }
    for value in ["a lot", "not sure", ""] {
        assert!(!looks_like(SlotKind::Amount, value), "{value:?}");
    }
}

#[test]
fn text_accepts_anything_but_blank() {
    assert!(looks_like(SlotKind::Text, "ACME Ltd"));
    assert!(looks_like(SlotKind::Text, "x"));
    assert!(!looks_like(SlotKind::Text, ""));
    assert!(!looks_like(SlotKind::Text, " \t "));
}
