//! The generated dialogue–summary set: reproducible from its seed, covering every intent, with
//! summaries that state the dialogue's facts, disjoint splits, and JSONL files that round-trip
//! and report a bad line by number.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use train::dialogues::{
    Dialogue, DialogueError, INTENTS, SPLIT_FILES, Split, generate, read_jsonl, split, write_jsonl,
};

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = generate(300, 42).unwrap();
    let b = generate(300, 42).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    // Asking for more extends the same sequence.
    let longer = generate(450, 42).unwrap();
    assert_eq!(&longer[..300], a.as_slice());
}

#[test]
fn different_seeds_give_different_dialogues() {
    let a = generate(200, 1).unwrap();
    let b = generate(200, 2).unwrap();
    let texts: HashSet<&str> = a.iter().map(|d| d.dialogue.as_str()).collect();
    let shared = b
        .iter()
        .filter(|d| texts.contains(d.dialogue.as_str()))
        .count();
    assert_eq!(shared, 0, "seeds 1 and 2 share {shared} of 200 dialogues");
    let intents_a: Vec<&str> = a.iter().map(|d| d.intent.as_str()).collect();
    let intents_b: Vec<&str> = b.iter().map(|d| d.intent.as_str()).collect();
    assert_ne!(
        intents_a, intents_b,
        "the intent order should depend on the seed"
    );
}

#[test]
fn every_block_of_twenty_holds_every_intent_once() {
    let dialogues = generate(1000, 5).unwrap();
    for (block_idx, block) in dialogues.chunks(INTENTS.len()).enumerate() {
        let mut intents: Vec<&str> = block.iter().map(|d| d.intent.as_str()).collect();
        intents.sort_unstable();
        let mut expected = INTENTS.to_vec();
        expected.sort_unstable();
        assert_eq!(intents, expected, "block {block_idx}");
    }
    // The first 20 of any seed already cover them all.
    let first = generate(INTENTS.len(), 99).unwrap();
    for intent in INTENTS {
        assert!(first.iter().any(|d| d.intent == intent), "{intent} missing");
    }
}

/// The structural promises, checked on one dialogue.
fn check(dialogue: &Dialogue) {
    let what = format!(
        "{}:\n{}\n=> {}",
        dialogue.id, dialogue.dialogue, dialogue.summary
    );
    let lines: Vec<&str> = dialogue.dialogue.lines().collect();
    assert!(
        (2..=8).contains(&lines.len()),
        "{} turns in {what}",
        lines.len()
    );
    assert!(
        !dialogue.summary.contains('\n'),
        "summary is one line: {what}"
    );
    assert!(dialogue.summary.ends_with('.'), "{what}");
    for text in [&dialogue.dialogue, &dialogue.summary] {
        assert!(
            !text.contains('{') && !text.contains('}'),
            "unfilled slot in {what}"
        );
    }
    // Two speakers, the customer first unless the agent greets.
    let speakers: HashSet<&str> = lines
        .iter()
        .map(|line| {
            line.split_once(": ")
                .unwrap_or_else(|| panic!("no speaker in {line:?}"))
                .0
        })
        .collect();
    assert_eq!(speakers.len(), 2, "{what}");
    let name = &dialogue.slots["name"];
    assert!(speakers.contains(name.as_str()), "{what}");
    // Each fact the summary states is in the dialogue, verbatim.
    for (key, value) in &dialogue.slots {
        assert!(!value.is_empty(), "empty slot {key} in {what}");
        assert!(
            dialogue.dialogue.contains(value.as_str()),
            "{key} = {value:?} not in the dialogue of {what}"
        );
        assert!(
            dialogue.summary.contains(value.as_str()),
            "{key} = {value:?} not in the summary of {what}"
        );
    }
}

#[test]
fn summaries_state_the_slot_values_of_their_dialogue() {
    let dialogues = generate(3000, 11).unwrap();
    let mut keys_per_intent: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for dialogue in &dialogues {
        check(dialogue);
        keys_per_intent
            .entry(dialogue.intent.as_str())
            .or_default()
            .extend(dialogue.slots.keys().map(String::as_str));
    }
    // Slots that carry numbers and places show up where the intent needs them.
    for (intent, key) in [
        ("card_arrival", "days"),
        ("card_arrival", "city"),
        ("refund", "amount"),
        ("refund", "merchant"),
        ("refund", "order"),
        ("transfer_failed", "recipient"),
        ("exchange_rate", "rate"),
        ("fees", "fee"),
        ("address_change", "city"),
        ("statement_request", "month"),
    ] {
        assert!(
            keys_per_intent[intent].contains(key),
            "{intent} never states {key}"
        );
    }
}

#[test]
fn the_set_varies_in_length_wording_and_casing() {
    let dialogues = generate(2000, 3).unwrap();
    let lengths: HashSet<usize> = dialogues
        .iter()
        .map(|d| d.dialogue.lines().count())
        .collect();
    assert_eq!(lengths, (2..=8).collect(), "turn counts");
    let summaries: HashSet<&str> = dialogues.iter().map(|d| d.summary.as_str()).collect();
    assert!(
        summaries.len() > 1900,
        "only {} distinct summaries of 2000",
        summaries.len()
    );
    let openings: HashSet<&str> = dialogues
        .iter()
        .filter_map(|d| {
            d.dialogue
                .lines()
                .next()?
                .split_once(": ")
                .map(|(_, text)| text)
        })
        .filter(|text| !text.chars().any(|c| c.is_ascii_digit()))
        .collect();
    assert!(
        openings.len() > 60,
        "only {} distinct slot-free openings",
        openings.len()
    );
    // Some customer turns are typed in lowercase; some summaries name the agent, some do not.
    let lowercase = dialogues.iter().any(|d| {
        d.dialogue.lines().any(|line| {
            line.split_once(": ")
                .is_some_and(|(speaker, text)| speaker == d.slots["name"] && text.starts_with("i "))
        })
    });
    assert!(lowercase, "no lowercase customer turn");
    let named = dialogues
        .iter()
        .filter(|d| d.slots.contains_key("agent"))
        .count();
    assert!(
        (600..1400).contains(&named),
        "{named} of 2000 summaries name the agent"
    );
    assert!(dialogues.iter().any(|d| d.summary.contains("the agent")));
    // Off-topic chit-chat appears but never reaches a summary.
    for (remark, word) in [("long week", "stressed"), ("the weather in", "weather")] {
        let chatty: Vec<&Dialogue> = dialogues
            .iter()
            .filter(|d| d.dialogue.contains(remark))
            .collect();
        assert!(!chatty.is_empty(), "no dialogue with {remark:?}");
        assert!(
            chatty.iter().all(|d| !d.summary.contains(word)),
            "{word:?} in a summary"
        );
    }
}

#[test]
fn splits_share_no_dialogue_and_cut_one_generation() {
    let parts = split(7, 300, 60, 40).unwrap();
    assert_eq!(
        (parts.train.len(), parts.valid.len(), parts.test.len()),
        (300, 60, 40)
    );
    let mut texts = HashSet::new();
    let mut ids = HashSet::new();
    for dialogue in parts.train.iter().chain(&parts.valid).chain(&parts.test) {
        assert!(
            texts.insert(dialogue.dialogue.as_str()),
            "duplicate dialogue {}",
            dialogue.id
        );
        assert!(
            ids.insert(dialogue.id.as_str()),
            "duplicate id {}",
            dialogue.id
        );
    }
    let all = generate(400, 7).unwrap();
    let joined: Vec<Dialogue> = [parts.train, parts.valid, parts.test].concat();
    assert_eq!(joined, all);
    // Empty parts are fine.
    let parts = split(7, 5, 0, 0).unwrap();
    assert_eq!(
        (parts.train.len(), parts.valid.len(), parts.test.len()),
        (5, 0, 0)
    );
}

#[test]
fn jsonl_round_trips_and_overwrites_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dialogues.jsonl");
    let dialogues = generate(50, 8).unwrap();
    write_jsonl(&path, &dialogues).unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), dialogues);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 50);
    assert!(text.ends_with('\n'));

    // A second write replaces the file whole and leaves no temporary file behind.
    write_jsonl(&path, &dialogues[..3]).unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), &dialogues[..3]);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["dialogues.jsonl"]);

    let parts = split(8, 20, 5, 5).unwrap();
    let split_dir = dir.path().join("set");
    parts.write_dir(&split_dir).unwrap();
    for name in SPLIT_FILES {
        assert!(split_dir.join(name).is_file(), "{name}");
    }
    assert_eq!(Split::read_dir(&split_dir).unwrap(), parts);
}

#[test]
fn a_malformed_line_is_reported_by_file_and_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let good = generate(2, 1).unwrap();
    let mut text = String::new();
    for dialogue in &good {
        text.push_str(&serde_json::to_string(dialogue).unwrap());
        text.push('\n');
    }
    text.push('\n'); // blank lines are skipped but still counted
    text.push_str("{\"id\": \"x\", \"intent\": \"refund\", \"dialogue\": \"A: hi\"}\n"); // no summary
    std::fs::write(&path, &text).unwrap();
    let error = read_jsonl(&path).unwrap_err();
    assert!(
        matches!(error, DialogueError::Malformed { line: 4, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("{}:4:", path.display())),
        "{message}"
    );
    assert!(message.contains("summary"), "{message}");

    std::fs::write(&path, "not json\n").unwrap();
    let error = read_jsonl(&path).unwrap_err();
    assert!(
        error.to_string().contains(":1: not a dialogue record"),
        "{error}"
    );

    let missing = dir.path().join("missing.jsonl");
    let error = read_jsonl(&missing).unwrap_err();
    assert!(matches!(error, DialogueError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.jsonl"), "{error}");
}

#[test]
fn records_without_slots_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.jsonl");
    std::fs::write(
        &path,
        "{\"id\": \"a\", \"intent\": \"refund\", \"dialogue\": \"Anna: hi\\nTom: hello\", \"summary\": \"Anna greets Tom.\"}\n",
    )
    .unwrap();
    let dialogues = read_jsonl(&path).unwrap();
    assert_eq!(dialogues.len(), 1);
    assert!(dialogues[0].slots.is_empty());
    assert_eq!(dialogues[0].dialogue, "Anna: hi\nTom: hello");
}
