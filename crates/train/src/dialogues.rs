//! A generated set of customer-service chats with one-line summaries, SAMSum-like, for training
//! and judging the course's small summarizer without downloading a data set.
//!
//! Each [`Dialogue`] is 2–8 turns ("Name: text", one per line) between a customer and an agent
//! about one of [`INTENTS`] (card not arrived, lost card, refund, failed transfer, exchange rate,
//! …), with slot values (amounts, days, dates, cities, merchants, order and case numbers) drawn
//! from lists, phrasing drawn from several templates per step, small typos and casing slips in the
//! customer's turns, and now and then an identity check or a chit-chat exchange that the summary
//! must ignore. The summary says who wanted what and how it ended, e.g. "Anna's card has not
//! arrived after 12 days; the agent sends a replacement to Berlin."
//!
//! Generation is a pure function of `(n, seed)`: one ChaCha8 stream, integers only (no `usize`
//! draws, whose width differs between platforms), so the same call gives the same bytes on every
//! machine with the same `rand`/`rand_chacha` versions; `generate(n, seed)` is a prefix of
//! `generate(n + k, seed)`. Dialogue texts are unique within a call, so [`split`]'s parts share
//! none.
//!
//! The module has its own [`DialogueError`] rather than the crate's `Error`, so it stands alone
//! (it needs no model, tensor or checkpoint type).
//!
//! ```
//! use train::dialogues::{generate, INTENTS};
//!
//! let dialogues = generate(40, 7)?;
//! assert_eq!(dialogues, generate(40, 7)?); // the same seed, the same data
//! // Every block of 20 holds each intent once, so splits are balanced.
//! assert!(INTENTS.iter().all(|intent| dialogues.iter().any(|d| d.intent == *intent)));
//! let first = &dialogues[0];
//! assert!((2..=8).contains(&first.dialogue.lines().count()));
//! // The summary carries the dialogue's key facts: the customer's name at least.
//! let name = &first.slots["name"];
//! assert!(first.dialogue.starts_with(name.as_str()) || first.dialogue.contains(&format!("\n{name}: ")));
//! assert!(first.summary.contains(name.as_str()));
//! # Ok::<(), train::dialogues::DialogueError>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What went wrong generating, writing or reading dialogues.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialogueError {
    /// A file that could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file (or its temporary sibling, or its folder) that could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSONL line that is not a dialogue record; `line` counts from 1, as editors do.
    #[error("{}:{line}: not a dialogue record: {source}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    /// The templates could not produce that many distinct dialogues.
    #[error(
        "only {unique} distinct dialogues after {attempts} draws, {requested} requested: ask for fewer"
    )]
    Exhausted {
        requested: usize,
        unique: usize,
        attempts: usize,
    },
}

/// `Result` with [`DialogueError`].
pub type Result<T, E = DialogueError> = std::result::Result<T, E>;

/// One chat and its reference summary; a JSONL line of the data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialogue {
    /// `s<seed>-<index>`: unique within a generation and stable across runs.
    pub id: String,
    /// One of [`INTENTS`]; lets results be broken down by kind of request.
    pub intent: String,
    /// Turns "Name: text", joined by newlines (SAMSum's layout).
    pub dialogue: String,
    /// One line: who wanted what, and the outcome.
    pub summary: String,
    /// The facts the summary states, each verbatim in the dialogue too (`name`, `amount`,
    /// `city`, …): what a summary must get right, for checks finer than word overlap. Absent in
    /// files that lack it.
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
}

/// Disjoint train, validation and test parts of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// What the model learns from.
    pub train: Vec<Dialogue>,
    /// What picks checkpoints and hyperparameters.
    pub valid: Vec<Dialogue>,
    /// What the final numbers are reported on, seen once.
    pub test: Vec<Dialogue>,
}

/// The file names [`Split::write_dir`] uses, in the order train, valid, test.
pub const SPLIT_FILES: [&str; 3] = ["train.jsonl", "valid.jsonl", "test.jsonl"];

/// Dialogues for the first `n` draws of `seed`: intents cycle in shuffled blocks of
/// [`INTENTS`]`.len()`, so any 20 consecutive dialogues cover every intent once.
///
/// A draw whose text repeats an earlier one is redrawn; after 10·n + 1000 draws without `n`
/// distinct texts the call fails with [`DialogueError::Exhausted`] rather than loop (far beyond
/// any size the course uses: the slot lists alone give billions of combinations).
pub fn generate(n: usize, seed: u64) -> Result<Vec<Dialogue>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let max_attempts = n.saturating_mul(10).saturating_add(1000);
    let mut attempts = 0;
    let mut block: Vec<usize> = Vec::new();
    while out.len() < n {
        if block.is_empty() {
            block = (0..TEMPLATES.len()).collect();
            shuffle(&mut rng, &mut block);
        }
        let Some(intent_idx) = block.pop() else {
            break;
        };
        let spec = &TEMPLATES[intent_idx];
        loop {
            if attempts >= max_attempts {
                return Err(DialogueError::Exhausted {
                    requested: n,
                    unique: out.len(),
                    attempts,
                });
            }
            attempts += 1;
            let (dialogue, summary, slots) = compose(&mut rng, spec);
            if seen.insert(dialogue.clone()) {
                out.push(Dialogue {
                    id: format!("s{seed}-{:06}", out.len()),
                    intent: spec.name.to_string(),
                    dialogue,
                    summary,
                    slots,
                });
                break;
            }
        }
    }
    Ok(out)
}

/// `n_train + n_valid + n_test` dialogues of `seed`, cut in that order into three parts. Texts
/// are unique within a generation, so no dialogue is in two parts.
pub fn split(seed: u64, n_train: usize, n_valid: usize, n_test: usize) -> Result<Split> {
    let total = n_train.saturating_add(n_valid).saturating_add(n_test);
    let mut dialogues = generate(total, seed)?;
    let test = dialogues.split_off(n_train + n_valid);
    let valid = dialogues.split_off(n_train);
    Ok(Split {
        train: dialogues,
        valid,
        test,
    })
}

impl Split {
    /// Writes `dir/train.jsonl`, `dir/valid.jsonl` and `dir/test.jsonl` (each atomically),
    /// creating `dir` if needed.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        for (name, part) in SPLIT_FILES
            .iter()
            .zip([&self.train, &self.valid, &self.test])
        {
            write_jsonl(&dir.join(name), part)?;
        }
        Ok(())
    }

    /// Reads what [`Split::write_dir`] wrote.
    pub fn read_dir(dir: &Path) -> Result<Split> {
        let [train, valid, test] = SPLIT_FILES;
        Ok(Split {
            train: read_jsonl(&dir.join(train))?,
            valid: read_jsonl(&dir.join(valid))?,
            test: read_jsonl(&dir.join(test))?,
        })
    }
}

/// Writes one JSON object per line through a temporary file in the same folder, renamed over
/// `path` at the end: an interrupted write leaves the old file whole. Creates missing folders.
pub fn write_jsonl(path: &Path, dialogues: &[Dialogue]) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write_error = |source| DialogueError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    {
        let mut writer = BufWriter::new(temp.as_file_mut());
        for dialogue in dialogues {
            serde_json::to_writer(&mut writer, dialogue)
                .map_err(|e| write_error(std::io::Error::other(e)))?;
            writer.write_all(b"\n").map_err(write_error)?;
        }
        writer.flush().map_err(write_error)?;
    }
    temp.persist(path).map_err(|e| write_error(e.error))?;
    Ok(())
}

/// Reads a JSONL file of dialogues; blank lines are skipped, any other line that is not a record
/// is an error naming the file and the line number.
pub fn read_jsonl(path: &Path) -> Result<Vec<Dialogue>> {
    let read_error = |source| DialogueError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut out = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read_error)?;
        if line.trim().is_empty() {
            continue;
        }
        let dialogue = serde_json::from_str(&line).map_err(|source| DialogueError::Malformed {
            path: path.to_path_buf(),
            line: index + 1,
            source,
        })?;
        out.push(dialogue);
    }
    Ok(out)
}

// ---------------------------------------------------------------- composing one dialogue

/// The most turns a dialogue has (SAMSum's chats are mostly short; ours stay within 2–8).
const MAX_TURNS: usize = 8;

/// One dialogue of `spec`'s intent: its text, summary and the slots the summary states.
fn compose(
    rng: &mut ChaCha8Rng,
    spec: &IntentTemplates,
) -> (String, String, BTreeMap<String, String>) {
    let slots = draw_slots(rng);
    const NO_OUTCOME: Outcome = Outcome {
        agent: &[],
        summary: &[],
    };
    let outcome = spec
        .outcomes
        .get(index(rng, spec.outcomes.len()))
        .unwrap_or(&NO_OUTCOME);
    let vague = rng.random_bool(0.4);
    let opening_turns = if vague { 3 } else { 1 };

    // Optional parts, each added only if the dialogue stays within MAX_TURNS.
    let mut budget = MAX_TURNS - opening_turns - 1;
    let mut take = |rng: &mut ChaCha8Rng, probability: f64, turns: usize| {
        let yes = rng.random_bool(probability) && turns <= budget;
        if yes {
            budget -= turns;
        }
        yes
    };
    let greeting = take(rng, 0.3, 1);
    let verification = take(rng, 0.2, 2);
    let chit_chat = take(rng, 0.15, 2);
    let thanks = take(rng, 0.6, 1);
    let closing = thanks && take(rng, 0.6, 1);

    let mut turns: Vec<(Speaker, String)> = Vec::new();
    if greeting {
        turns.push((Speaker::Agent, fill(pick(rng, GREETINGS), &slots)));
    }
    if vague {
        turns.push(customer_turn(rng, spec.vague, &slots));
        turns.push((Speaker::Agent, fill(pick(rng, spec.ask), &slots)));
        turns.push(customer_turn(rng, spec.detail, &slots));
    } else {
        turns.push(customer_turn(rng, spec.problem, &slots));
    }
    if verification {
        let (question, answer) = pick(rng, VERIFICATIONS);
        turns.push((Speaker::Agent, fill(question, &slots)));
        turns.push(customer_turn(rng, &[answer], &slots));
    }
    turns.push((Speaker::Agent, fill(pick(rng, outcome.agent), &slots)));
    if chit_chat {
        let (remark, reply) = pick(rng, CHIT_CHAT);
        turns.push(customer_turn(rng, &[remark], &slots));
        turns.push((Speaker::Agent, fill(reply, &slots)));
    }
    if thanks {
        turns.push(customer_turn(rng, THANKS, &slots));
    }
    if closing {
        turns.push((Speaker::Agent, fill(pick(rng, CLOSINGS), &slots)));
    }

    let name = slot(&slots, "name");
    let agent = slot(&slots, "agent");
    let dialogue = turns
        .iter()
        .map(|(speaker, text)| match speaker {
            Speaker::Customer => format!("{name}: {text}"),
            Speaker::Agent => format!("{agent}: {text}"),
        })
        .collect::<Vec<_>>()
        .join("\n");

    // The summary names the agent half of the time, else says "the agent": a summarizer must
    // learn which speaker is which either way.
    let summary_template = pick(rng, outcome.summary);
    let name_agent = rng.random_bool(0.5);
    let mut summary_slots = slots.clone();
    if !name_agent {
        summary_slots.insert("agent", "the agent".to_string());
    }
    let summary = capitalize_first(&fill(summary_template, &summary_slots));
    let stated = placeholders(summary_template)
        .filter(|key| *key != "agent" || name_agent)
        .map(|key| (key.to_string(), slot(&slots, key).to_string()))
        .collect();
    (dialogue, summary, stated)
}

#[derive(Debug, Clone, Copy)]
enum Speaker {
    Customer,
    Agent,
}

/// A customer's turn: one of `templates`, sometimes roughened (typo, lowercase, no final
/// punctuation) before the slots go in, so names, amounts and numbers always stay exact.
fn customer_turn(
    rng: &mut ChaCha8Rng,
    templates: &[&str],
    slots: &BTreeMap<&'static str, String>,
) -> (Speaker, String) {
    let mut text = pick(rng, templates).to_string();
    if rng.random_bool(0.08) {
        text = with_typo(rng, &text);
    }
    if rng.random_bool(0.12) {
        text = text.to_lowercase();
    }
    if rng.random_bool(0.1) {
        text = text.trim_end_matches(['.', '!']).to_string();
    }
    (Speaker::Customer, fill(&text, slots))
}

/// One typo in one word of at least four ASCII letters (never inside a `{slot}`): two inner
/// letters swapped, a letter dropped or a letter doubled.
fn with_typo(rng: &mut ChaCha8Rng, text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let candidates: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, word)| word.len() >= 4 && word.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(|(i, _)| i)
        .collect();
    let Some(&word_idx) = candidates.get(index(rng, candidates.len())) else {
        return text.to_string();
    };
    let mut letters: Vec<char> = words[word_idx].chars().collect();
    // Inner position 1..len-2, so the word keeps its first and last letters.
    let at = 1 + index(rng, letters.len() - 2);
    match index(rng, 3) {
        0 => letters.swap(at, at + 1),
        1 => {
            letters.remove(at);
        }
        _ => letters.insert(at, letters[at]),
    }
    let typo: String = letters.into_iter().collect();
    words
        .iter()
        .enumerate()
        .map(|(i, word)| if i == word_idx { typo.as_str() } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces each `{key}` with its slot value; unknown keys stay as written (a test checks that no
/// template leaves one).
fn fill(template: &str, slots: &BTreeMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match slots.get(key) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{key}` names in a template, in order.
fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(key, _)| key))
}

fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn slot<'a>(slots: &'a BTreeMap<&'static str, String>, key: &str) -> &'a str {
    slots.get(key).map_or("", String::as_str)
}

// ---------------------------------------------------------------- drawing slot values

/// Every slot any template may use, drawn afresh for each dialogue (unused ones cost a few draws
/// and keep the stream's layout independent of the intent).
fn draw_slots(rng: &mut ChaCha8Rng) -> BTreeMap<&'static str, String> {
    let mut slots = BTreeMap::new();
    let name = pick(rng, CUSTOMER_NAMES);
    let recipient = pick_other(rng, CUSTOMER_NAMES, name);
    let city = pick(rng, CITIES);
    let other_city = pick_other(rng, CITIES, city);
    let symbol = pick(rng, &["€", "£", "$"]);
    let euros = 5 + draw(rng, 1496);
    let amount = if rng.random_bool(0.5) {
        format!("{symbol}{euros}")
    } else {
        format!("{symbol}{euros}.{:02}", draw(rng, 100))
    };
    let fee = format!("{symbol}{}.{:02}", 1 + draw(rng, 9), draw(rng, 100));
    let limit = format!("{symbol}{}", 500 * (2 + draw(rng, 19)));
    let (currency, base_rate) = pick(rng, CURRENCIES);
    // Rates in units of 1/10000, moved by up to ±2%, in integers so formatting is exact.
    let rate = u64::from(base_rate) * u64::from(980 + draw(rng, 41)) / 1000;
    let month = pick(rng, MONTHS);
    let day = 1 + draw(rng, 28);
    let date = if rng.random_bool(0.5) {
        format!("{day} {}", pick(rng, MONTHS))
    } else {
        format!("{} {day}", pick(rng, MONTHS))
    };
    let email_number = draw(rng, 100);

    slots.insert("name", name.to_string());
    slots.insert("agent", pick(rng, AGENT_NAMES).to_string());
    slots.insert("recipient", recipient.to_string());
    slots.insert("city", city.to_string());
    slots.insert("other_city", other_city.to_string());
    slots.insert("merchant", pick(rng, MERCHANTS).to_string());
    slots.insert("amount", amount);
    slots.insert("fee", fee);
    slots.insert("limit", limit);
    slots.insert("currency", currency.to_string());
    slots.insert("rate", format!("{}.{:04}", rate / 10_000, rate % 10_000));
    slots.insert("month", month.to_string());
    slots.insert("date", date);
    slots.insert("days", format!("{} days", 3 + draw(rng, 28)));
    slots.insert("hours", format!("{} hours", pick(rng, &[2, 4, 12, 24, 48])));
    slots.insert(
        "order",
        format!(
            "#{}{:05}",
            char::from(b'A' + draw(rng, 26) as u8),
            draw(rng, 100_000)
        ),
    );
    slots.insert(
        "case",
        format!(
            "{}-{:06}",
            pick(rng, &["CS", "CL", "TK"]),
            draw(rng, 1_000_000)
        ),
    );
    slots.insert("last4", format!("{:04}", draw(rng, 10_000)));
    slots.insert("device", pick(rng, DEVICES).to_string());
    slots.insert(
        "version",
        format!("5.{}.{}", 10 + draw(rng, 30), draw(rng, 10)),
    );
    slots.insert(
        "dob",
        format!(
            "{} {} {}",
            1 + draw(rng, 28),
            pick(rng, MONTHS),
            1950 + draw(rng, 55)
        ),
    );
    slots.insert(
        "email",
        format!(
            "{}{email_number}@example.com",
            name.to_lowercase().replace(' ', ".")
        ),
    );
    slots
}

/// A uniform integer in 0..n (0 when n is 0), drawn as u32 so every platform sees the same
/// numbers.
fn draw(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    if n == 0 { 0 } else { rng.random_range(0..n) }
}

/// A uniform index into a list of `len` items (0 when it is empty).
fn index(rng: &mut ChaCha8Rng, len: usize) -> usize {
    draw(rng, u32::try_from(len).unwrap_or(u32::MAX)) as usize
}

/// A uniform item of a static table. Every table is non-empty (a test covers each); an empty one
/// would give the type's default rather than panic.
fn pick<T: Copy + Default>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items
        .get(index(rng, items.len()))
        .copied()
        .unwrap_or_default()
}

/// An item of `items` other than `not` (the next one when the draw hits it).
fn pick_other(rng: &mut ChaCha8Rng, items: &[&'static str], not: &str) -> &'static str {
    let i = index(rng, items.len());
    match items.get(i) {
        Some(&item) if item != not => item,
        _ => items
            .get((i + 1) % items.len().max(1))
            .copied()
            .unwrap_or(""),
    }
}

/// Fisher–Yates with u32 draws (rand's `shuffle` draws `usize`).
fn shuffle<T>(rng: &mut ChaCha8Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, index(rng, i + 1));
    }
}

// ---------------------------------------------------------------- the tables

/// The intents, in table order: the `intent` field of every [`Dialogue`] is one of these.
pub const INTENTS: [&str; 20] = [
    "card_arrival",
    "lost_card",
    "refund",
    "transfer_failed",
    "exchange_rate",
    "pin_reset",
    "account_closure",
    "fees",
    "app_crash",
    "address_change",
    "double_charge",
    "card_declined",
    "top_up",
    "cash_withdrawal",
    "limit_increase",
    "identity_verification",
    "direct_debit",
    "virtual_card",
    "statement_request",
    "login_locked",
];

/// How one intent's chat unfolds. The customer either states the problem with its details at
/// once (`problem`) or vaguely (`vague`), is asked (`ask`) and gives them (`detail`); the agent
/// then resolves it one of several ways (`outcomes`), each with the summaries that describe it.
/// Every `problem` and every `detail` template carries the slots the summaries name.
struct IntentTemplates {
    name: &'static str,
    problem: &'static [&'static str],
    vague: &'static [&'static str],
    ask: &'static [&'static str],
    detail: &'static [&'static str],
    outcomes: &'static [Outcome],
}

/// One way a request ends: the agent's turn, and the summaries of the whole chat.
struct Outcome {
    agent: &'static [&'static str],
    summary: &'static [&'static str],
}

const TEMPLATES: [IntentTemplates; 20] = [
    IntentTemplates {
        name: "card_arrival",
        problem: &[
            "Hi, I ordered a new card {days} ago and it still hasn't arrived.",
            "Hello! My card hasn't come yet, it's been {days} since I ordered it.",
            "Where is my card? I've been waiting {days} now.",
            "hey, still no card after {days}. what's going on?",
        ],
        vague: &[
            "Hi, I have a question about my new card.",
            "Hello, I'm still waiting for my card.",
            "Hi there, something is wrong with my card order.",
        ],
        ask: &[
            "Sorry to hear that. When did you order it?",
            "I can check that for you. How long ago did you place the order?",
            "Of course. How long have you been waiting?",
        ],
        detail: &[
            "About {days} ago.",
            "It's been {days} already.",
            "{days}, and nothing in the mail.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "That's too long. I've cancelled the old card and sent a replacement to your address in {city}.",
                    "I'm sorry about the wait. A new card is on its way to {city} and should arrive within 5 working days.",
                ],
                summary: &[
                    "{name}'s card has not arrived after {days}; {agent} sends a replacement to {city}.",
                    "{name} has waited {days} for a card; {agent} cancels it and ships a new one to {city}.",
                ],
            },
            Outcome {
                agent: &[
                    "I can see it was posted on {date}, so it should reach you in a few days. If not, message us again.",
                    "The card was dispatched on {date} and is still in the post. Please give it a few more days.",
                ],
                summary: &[
                    "{name}'s card has not arrived after {days}; {agent} says it was posted on {date} and should come soon.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "lost_card",
        problem: &[
            "Hi, I think I lost my card in {city} yesterday.",
            "My card was stolen while I was in {city}! Please help.",
            "hello, I can't find my card anywhere. The last time I used it was in {city}.",
        ],
        vague: &[
            "Hi, I need help urgently.",
            "Hello, I have a problem, I think my card is gone.",
        ],
        ask: &[
            "I'm sorry to hear that. Where did you last use it?",
            "Let's secure your account first. Where were you when you noticed it missing?",
        ],
        detail: &[
            "In {city}, at a café.",
            "I was in {city} on a business trip.",
            "Somewhere in {city}, I think.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "I've blocked the card ending in {last4} and ordered a new one. It will arrive in about a week.",
                    "Done: the card ending in {last4} is blocked and a replacement is on its way.",
                ],
                summary: &[
                    "{name} lost their card in {city}; {agent} blocks the card ending in {last4} and orders a new one.",
                ],
            },
            Outcome {
                agent: &[
                    "I've frozen the card for now. If you find it, you can unfreeze it in the app.",
                ],
                summary: &[
                    "{name} may have lost their card in {city}; {agent} freezes it until it turns up.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "refund",
        problem: &[
            "Hi, I returned an order to {merchant} but never got my {amount} back. The order number is {order}.",
            "I'm still waiting for a refund of {amount} from {merchant}, order {order}.",
            "hello, {merchant} promised me a refund of {amount} for order {order} weeks ago",
        ],
        vague: &[
            "Hi, I'm waiting for a refund.",
            "Hello, a shop owes me money.",
        ],
        ask: &[
            "Could you tell me the merchant, the amount and the order number?",
            "Sure, which purchase is it about?",
        ],
        detail: &[
            "{merchant}, {amount}, order {order}.",
            "It's order {order} from {merchant}, {amount} in total.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "I can see the refund of {amount} from {merchant} is pending. It will be in your account within 3 days.",
                ],
                summary: &[
                    "{name} is waiting for a {amount} refund from {merchant} for order {order}; {agent} sees it pending and expects it within 3 days.",
                ],
            },
            Outcome {
                agent: &[
                    "{merchant} hasn't sent anything yet, so I've opened a dispute for you, case {case}.",
                    "Nothing has come from {merchant} so far. I've opened dispute {case} and will keep you posted.",
                ],
                summary: &[
                    "{name} never got a {amount} refund from {merchant} for order {order}; {agent} opens dispute {case}.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "transfer_failed",
        problem: &[
            "Hi, my transfer of {amount} to {recipient} failed and I don't know why.",
            "Why did my payment of {amount} to {recipient} bounce?",
            "I tried to send {amount} to {recipient} twice and it keeps failing.",
        ],
        vague: &[
            "Hi, my transfer didn't go through.",
            "Hello, I have a problem with a payment I sent.",
        ],
        ask: &[
            "I'll look into it. How much did you send, and to whom?",
            "Can you give me the amount and the recipient?",
        ],
        detail: &[
            "{amount} to {recipient}.",
            "It was {amount}, to {recipient}.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "The recipient's IBAN was wrong, so the bank sent the money back. Please check it with {recipient} and try again.",
                ],
                summary: &[
                    "{name}'s transfer of {amount} to {recipient} failed; {agent} explains the IBAN was wrong and the money came back.",
                ],
            },
            Outcome {
                agent: &[
                    "It was held for a security check. I've released it, so {recipient} will get the {amount} today.",
                ],
                summary: &[
                    "{name}'s {amount} transfer to {recipient} was held for a security check; {agent} releases it.",
                ],
            },
            Outcome {
                agent: &[
                    "It went over your daily transfer limit. I've raised the limit, so you can send it again now.",
                ],
                summary: &[
                    "{name} could not send {amount} to {recipient} because of the daily limit; {agent} raises the limit.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "exchange_rate",
        problem: &[
            "Hi, what's your exchange rate for {currency} today?",
            "Hello, I'm travelling soon. What rate do you give for {currency}?",
            "quick question: how many {currency} do I get for one euro with you?",
        ],
        vague: &[
            "Hi, I have a question about currency exchange.",
            "Hello, I'm going abroad soon and need some information.",
        ],
        ask: &[
            "Happy to help. Which currency do you need?",
            "Sure. Which currency are you interested in?",
        ],
        detail: &["{currency}.", "{currency}, please.", "I need {currency}."],
        outcomes: &[
            Outcome {
                agent: &[
                    "Today one euro buys {rate} {currency}, with no extra fee on weekdays.",
                    "Right now it's {rate} {currency} per euro.",
                ],
                summary: &[
                    "{name} asks about the exchange rate for {currency}; {agent} quotes {rate} per euro.",
                ],
            },
            Outcome {
                agent: &[
                    "It's {rate} {currency} per euro at the moment. On weekends we add 0.5%, so better exchange before Friday evening.",
                ],
                summary: &[
                    "{name} asks for the exchange rate for {currency}; {agent} quotes {rate} per euro and advises exchanging before the weekend.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "pin_reset",
        problem: &[
            "Hi, I forgot the PIN for my card ending in {last4}.",
            "I entered my PIN wrong three times and now it's blocked. Card ending in {last4}.",
            "how do I reset my PIN? it's the card ending in {last4}",
        ],
        vague: &[
            "Hi, I have a problem with my PIN.",
            "Hello, I can't pay with my card, the PIN doesn't work.",
        ],
        ask: &[
            "I can help with that. Which card is it?",
            "Sure. Could you tell me the last four digits of the card?",
        ],
        detail: &["The one ending in {last4}.", "It ends in {last4}."],
        outcomes: &[
            Outcome {
                agent: &[
                    "You can see your PIN in the app under Card > Show PIN. I've also reset the attempt counter.",
                ],
                summary: &[
                    "{name} forgot the PIN of the card ending in {last4}; {agent} shows where to find it in the app.",
                ],
            },
            Outcome {
                agent: &[
                    "I've unblocked the card ending in {last4}. You can set a new PIN at any ATM.",
                ],
                summary: &[
                    "{name}'s PIN for the card ending in {last4} was blocked; {agent} unblocks it so a new PIN can be set at an ATM.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "account_closure",
        problem: &[
            "Hi, I'd like to close my account.",
            "Hello, please close my account, I'm moving to another bank.",
            "i want to close my account. how do I do that?",
        ],
        vague: &[
            "Hi, I want to make a change to my account.",
            "Hello, I need to talk to someone about my account.",
        ],
        ask: &[
            "Of course. What would you like to change?",
            "Sure, what is it about?",
        ],
        detail: &[
            "I'd like to close it completely.",
            "I want to close it, please.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "Done. Your remaining balance of {amount} will be sent to your linked account within 2 days.",
                ],
                summary: &[
                    "{name} wants to close their account; {agent} closes it and sends the remaining {amount} to the linked account.",
                ],
            },
            Outcome {
                agent: &[
                    "I'm sorry to see you go. Before I can close it, please move the {amount} that is left on the account, then write to us again.",
                ],
                summary: &[
                    "{name} wants to close their account; {agent} asks them to move the remaining {amount} first.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "fees",
        problem: &[
            "Hi, why was I charged {fee} for withdrawing cash in {city}?",
            "I got a {fee} fee for an ATM withdrawal in {city}. Is that right?",
            "what is this {fee} fee from the cash machine in {city}??",
        ],
        vague: &[
            "Hi, I have a question about a fee on my statement.",
            "Hello, I was charged a fee I don't understand.",
        ],
        ask: &[
            "Sure, which fee do you mean?",
            "Let me check. Which charge is it?",
        ],
        detail: &[
            "{fee} for taking out cash in {city}.",
            "An ATM fee of {fee}, in {city}.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "Withdrawals above the free monthly allowance cost 2%. As a one-off, I've refunded the {fee}.",
                ],
                summary: &[
                    "{name} was charged {fee} for an ATM withdrawal in {city}; {agent} refunds it as a one-off.",
                ],
            },
            Outcome {
                agent: &[
                    "That fee comes from the ATM operator in {city}, not from us, so we can't refund it.",
                ],
                summary: &[
                    "{name} asks about a {fee} ATM fee in {city}; {agent} explains the ATM operator charged it and it cannot be refunded.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "app_crash",
        problem: &[
            "Hi, the app keeps crashing on my {device} whenever I open it.",
            "Your app crashes every time I try to log in. I have a {device}.",
            "the app closes itself on my {device} since yesterday",
        ],
        vague: &[
            "Hi, the app isn't working.",
            "Hello, I can't use your app at all.",
        ],
        ask: &[
            "Sorry about that. Which phone do you use?",
            "Let's fix it. What device are you on?",
        ],
        detail: &["A {device}.", "I'm on a {device}."],
        outcomes: &[
            Outcome {
                agent: &[
                    "That's a known bug. Please update the app to version {version}, which fixes it.",
                ],
                summary: &[
                    "{name}'s app crashes on a {device}; {agent} asks them to update to version {version}.",
                ],
            },
            Outcome {
                agent: &[
                    "Thanks. I've passed it on to our developers as ticket {case}. Reinstalling the app should help meanwhile.",
                ],
                summary: &[
                    "{name}'s app crashes on a {device}; {agent} logs ticket {case} and suggests reinstalling.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "address_change",
        problem: &[
            "Hi, I've moved to {city}. How do I change my address?",
            "Hello, I need to update my address, I live in {city} now.",
            "i moved to {city} last month, can you change my address?",
        ],
        vague: &[
            "Hi, I need to update my details.",
            "Hello, some of my information is out of date.",
        ],
        ask: &["Sure, what has changed?", "Of course. Which details?"],
        detail: &["My address, I moved to {city}.", "I live in {city} now."],
        outcomes: &[
            Outcome {
                agent: &["I've updated your address to {city}. Your next card will go there."],
                summary: &["{name} moved to {city}; {agent} updates the address."],
            },
            Outcome {
                agent: &[
                    "You can change it yourself in the app under Profile, but we need a proof of address in {city}, like a utility bill.",
                ],
                summary: &[
                    "{name} moved to {city}; {agent} explains how to change the address in the app with a proof of address.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "double_charge",
        problem: &[
            "I was charged twice for the same purchase at {merchant}, {amount} each time!",
            "Hi, {merchant} took {amount} from my account twice.",
            "hello, why do I see two payments of {amount} to {merchant}?",
        ],
        vague: &[
            "Hi, I think I was charged twice.",
            "Hello, there's a double payment on my account.",
        ],
        ask: &[
            "Let me check. Which purchase was it?",
            "Sorry about that. Where and how much?",
        ],
        detail: &["At {merchant}, {amount}.", "{amount} at {merchant}, twice."],
        outcomes: &[
            Outcome {
                agent: &["I can see both payments of {amount}. I've reversed the second one."],
                summary: &[
                    "{name} was charged twice by {merchant}; {agent} reverses the duplicate {amount}.",
                ],
            },
            Outcome {
                agent: &[
                    "One of the two is only a pending authorisation. It will disappear within 7 days.",
                ],
                summary: &[
                    "{name} sees two {merchant} charges of {amount}; {agent} explains one is a pending authorisation that will drop off.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "card_declined",
        problem: &[
            "Hi, my card was declined at {merchant} just now. Why?",
            "my card got declined at {merchant}, very embarrassing",
            "Hello, I couldn't pay at {merchant} today, the card was refused.",
        ],
        vague: &["Hi, my card isn't working.", "Hello, my card was refused."],
        ask: &[
            "I'm sorry. Where did you try to pay?",
            "Let me look. Which shop was it?",
        ],
        detail: &["At {merchant}.", "It was {merchant}."],
        outcomes: &[
            Outcome {
                agent: &[
                    "Our system flagged the payment at {merchant} as unusual and blocked it. I've removed the block, so please try again.",
                ],
                summary: &[
                    "{name}'s card was declined at {merchant}; {agent} removes a fraud block.",
                ],
            },
            Outcome {
                agent: &["The card has expired. A new one was sent to you on {date}."],
                summary: &[
                    "{name}'s card was declined at {merchant} because it expired; {agent} says a new one was sent on {date}.",
                ],
            },
            Outcome {
                agent: &["Your balance was too low for that payment. You can top up in the app."],
                summary: &[
                    "{name}'s card was declined at {merchant} for lack of funds; {agent} suggests a top-up.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "top_up",
        problem: &[
            "Hi, I topped up {amount} by bank transfer and it's still not there.",
            "My top-up of {amount} hasn't shown up.",
            "where is my {amount} top up??",
        ],
        vague: &[
            "Hi, my top-up is missing.",
            "Hello, I added money but I can't see it.",
        ],
        ask: &[
            "How much did you top up?",
            "I'll check. What was the amount?",
        ],
        detail: &["{amount}.", "It was {amount}."],
        outcomes: &[
            Outcome {
                agent: &["I found it. The {amount} had a wrong reference, I've credited it now."],
                summary: &[
                    "{name}'s {amount} top-up was missing; {agent} finds it and credits it.",
                ],
            },
            Outcome {
                agent: &[
                    "Bank transfers take up to 2 working days. If the {amount} isn't there by {date}, write to us again.",
                ],
                summary: &[
                    "{name}'s {amount} top-up has not arrived; {agent} says to wait until {date}.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "cash_withdrawal",
        problem: &[
            "Hi, the ATM in {city} didn't give me any cash but {amount} was taken from my account.",
            "An ATM in {city} charged me {amount} and gave me nothing!",
        ],
        vague: &[
            "Hi, I had a problem with an ATM.",
            "Hello, a cash machine kept my money.",
        ],
        ask: &[
            "I'm sorry. What happened?",
            "Let's sort it out. Where was it and how much?",
        ],
        detail: &[
            "In {city} it took {amount} from my account but no cash came out.",
            "{amount}, at an ATM in {city}.",
        ],
        outcomes: &[
            Outcome {
                agent: &[
                    "I've opened a claim with the ATM's bank, case {case}. You'll get the {amount} back within 10 days.",
                ],
                summary: &[
                    "An ATM in {city} took {amount} from {name} without paying out; {agent} opens claim {case}.",
                ],
            },
            Outcome {
                agent: &[
                    "The ATM has reversed the withdrawal, the {amount} should be back tomorrow.",
                ],
                summary: &[
                    "An ATM in {city} kept {name}'s {amount}; {agent} sees the withdrawal reversed and the money back tomorrow.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "limit_increase",
        problem: &[
            "Hi, can you raise my card's spending limit to {limit}?",
            "I need a higher limit, {limit} per month, for a trip.",
        ],
        vague: &[
            "Hi, I have a question about my limits.",
            "Hello, my card limit is too low.",
        ],
        ask: &["Sure. What limit would you like?", "How high should it be?"],
        detail: &["{limit} a month, please.", "{limit} would be enough."],
        outcomes: &[
            Outcome {
                agent: &["Done, your monthly limit is now {limit}."],
                summary: &["{name} asks for a {limit} spending limit; {agent} raises it."],
            },
            Outcome {
                agent: &[
                    "I can't go that high without a proof of income. Please upload a payslip and we'll raise it to {limit}.",
                ],
                summary: &["{name} wants a {limit} limit; {agent} needs a proof of income first."],
            },
        ],
    },
    IntentTemplates {
        name: "identity_verification",
        problem: &[
            "Hi, my identity check has been pending for {days}.",
            "I uploaded my passport {days} ago and I'm still not verified.",
        ],
        vague: &[
            "Hi, I can't finish signing up.",
            "Hello, my account is still not active.",
        ],
        ask: &[
            "Let me look. How long ago did you upload your documents?",
            "When did you send us your ID?",
        ],
        detail: &["{days} ago.", "About {days} ago."],
        outcomes: &[
            Outcome {
                agent: &[
                    "The photo of your ID was blurry. Please upload a new one in the app and we'll check it within 24 hours.",
                ],
                summary: &[
                    "{name}'s verification has been pending for {days}; {agent} asks for a sharper photo of the ID.",
                ],
            },
            Outcome {
                agent: &[
                    "I've moved your check to the front of the queue. You'll be verified today.",
                ],
                summary: &[
                    "{name}'s verification has been pending for {days}; {agent} speeds it up.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "direct_debit",
        problem: &[
            "Hi, there's a direct debit from {merchant} for {amount} that I never agreed to.",
            "Who is {merchant}? They took {amount} by direct debit.",
        ],
        vague: &[
            "Hi, there's a payment on my account I don't recognise.",
            "Hello, someone took money from my account.",
        ],
        ask: &[
            "Let's check it. Who is the payment to, and how much?",
            "Can you tell me the name and the amount?",
        ],
        detail: &["{merchant}, {amount}.", "It says {merchant}, {amount}."],
        outcomes: &[
            Outcome {
                agent: &["I've cancelled the mandate and claimed back the {amount}."],
                summary: &[
                    "{name} did not authorise a {amount} direct debit from {merchant}; {agent} cancels it and claims the money back.",
                ],
            },
            Outcome {
                agent: &[
                    "That's the subscription you set up on {date}. You can cancel it in the app under Direct debits.",
                ],
                summary: &[
                    "{name} asks about a {amount} direct debit from {merchant}; {agent} explains it is a subscription from {date}.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "virtual_card",
        problem: &[
            "Hi, can I get a virtual card for shopping online?",
            "Hello, I'd like a virtual card for {merchant}, they don't take my physical one.",
            "do you have virtual cards?",
        ],
        vague: &[
            "Hi, I have a question about cards.",
            "Hello, quick question.",
        ],
        ask: &["Sure, what would you like to know?", "Go ahead!"],
        detail: &[
            "Can I get a virtual card for online shopping?",
            "I'd like a virtual card.",
        ],
        outcomes: &[
            Outcome {
                agent: &["Yes, I've created one for you. It's in the app now, ending in {last4}."],
                summary: &["{name} wants a virtual card; {agent} creates one ending in {last4}."],
            },
            Outcome {
                agent: &[
                    "You can make one yourself in the app under Cards > New virtual card. It's free.",
                ],
                summary: &[
                    "{name} asks for a virtual card; {agent} explains how to create one in the app for free.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "statement_request",
        problem: &[
            "Hi, I need my bank statement for {month} for my landlord.",
            "Could you send me a statement for {month}?",
        ],
        vague: &[
            "Hi, I need a document from you.",
            "Hello, I need some paperwork.",
        ],
        ask: &["Sure, which document?", "Of course. What do you need?"],
        detail: &[
            "The statement for {month}.",
            "My statement for {month}, please.",
        ],
        outcomes: &[
            Outcome {
                agent: &["I've emailed you the statement for {month}."],
                summary: &["{name} needs the {month} statement; {agent} emails it."],
            },
            Outcome {
                agent: &[
                    "You can download it in the app under Statements: choose {month} and PDF.",
                ],
                summary: &[
                    "{name} needs the {month} statement; {agent} explains how to download it from the app.",
                ],
            },
        ],
    },
    IntentTemplates {
        name: "login_locked",
        problem: &[
            "Hi, I'm locked out of my account after too many wrong passwords.",
            "I can't log in, it says my account is locked.",
        ],
        vague: &[
            "Hi, I can't get into the app.",
            "Hello, I have a login problem.",
        ],
        ask: &[
            "Sorry about that. What does the error say?",
            "What happens when you log in?",
        ],
        detail: &[
            "That my account is locked.",
            "It says the account is locked.",
        ],
        outcomes: &[
            Outcome {
                agent: &["I've sent a reset link to your email. It's valid for {hours}."],
                summary: &[
                    "{name} is locked out; {agent} sends a password reset link valid for {hours}.",
                ],
            },
            Outcome {
                agent: &[
                    "For security, the lock lifts itself after {hours}. After that, please reset your password.",
                ],
                summary: &["{name} is locked out; {agent} says the lock lifts after {hours}."],
            },
        ],
    },
];

const GREETINGS: &[&str] = &[
    "Hi, this is {agent} from customer support. How can I help?",
    "Hello {name}! How can I help you today?",
    "Good morning, {agent} here. What can I do for you?",
];

/// Identity checks: the agent's question, the customer's answer (distractor slots).
const VERIFICATIONS: &[(&str, &str)] = &[
    (
        "Before I look into it, could you confirm your date of birth?",
        "Sure, it's {dob}.",
    ),
    (
        "Thanks. For security, what's the email address on the account?",
        "It's {email}.",
    ),
];

/// Off-topic remarks after the resolution and the agent's reply; the summary ignores them.
const CHIT_CHAT: &[(&str, &str)] = &[
    (
        "By the way, the weather in {other_city} is awful today.",
        "Ha, I hope it clears up soon!",
    ),
    (
        "Sorry if I sounded stressed, it's been a long week.",
        "No worries at all, I understand.",
    ),
    (
        "Btw your app looks much nicer since the update.",
        "Thank you, I'll pass that on to the team!",
    ),
    (
        "I'm writing from a train to {other_city}, sorry for the typos.",
        "No problem at all, safe travels!",
    ),
];

const THANKS: &[&str] = &[
    "Thanks a lot!",
    "Great, thank you.",
    "Perfect, thanks for your help.",
    "ok thx",
    "That's all I needed, thanks.",
];

const CLOSINGS: &[&str] = &[
    "You're welcome, {name}. Have a nice day!",
    "Happy to help!",
    "Glad I could help. Take care!",
];

const CUSTOMER_NAMES: &[&str] = &[
    "Anna", "Ben", "Chloe", "Dev", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemal",
    "Lucia", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Umar",
    "Vera", "Wei", "Ximena", "Yusuf", "Zoë", "José", "Søren", "Aoife", "Bogdan", "Chiara",
    "Dmitri", "Elif", "Fatima", "Gustav", "Hana", "Ivan", "Julia", "Kofi", "Lena",
];

const AGENT_NAMES: &[&str] = &[
    "Tom", "Mia", "Sam", "Lea", "Max", "Nora", "Paul", "Sara", "Jan", "Ella", "Rui", "Ada",
];

const CITIES: &[&str] = &[
    "Berlin",
    "Paris",
    "Madrid",
    "Lisbon",
    "Dublin",
    "Vienna",
    "Prague",
    "Warsaw",
    "Milan",
    "Amsterdam",
    "Brussels",
    "Copenhagen",
    "Stockholm",
    "Oslo",
    "Helsinki",
    "Athens",
    "Zurich",
    "Munich",
    "Lyon",
    "Porto",
    "Krakow",
    "Budapest",
    "Edinburgh",
    "Manchester",
    "Rotterdam",
    "Seville",
    "Valencia",
    "Hamburg",
    "Gothenburg",
    "Tallinn",
];

const MERCHANTS: &[&str] = &[
    "CityMart",
    "FreshBasket",
    "Bookhaven",
    "Skyline Air",
    "Nordic Outfitters",
    "PixelPlay",
    "GreenLeaf Pharmacy",
    "UrbanRide",
    "Casa Mobili",
    "Bean & Co",
    "TechNest",
    "StreamBox",
    "Petals Florist",
    "Harbor Hotels",
    "FitHub Gym",
    "QuickFuel",
    "Luna Shoes",
    "MegaHome",
    "Orbit Telecom",
    "Sunny Travel",
];

/// Currency names and one euro's price in them, in units of 1/10000.
const CURRENCIES: &[(&str, u32)] = &[
    ("US dollars", 10_850),
    ("British pounds", 8_560),
    ("Swiss francs", 9_420),
    ("Japanese yen", 1_625_000),
    ("Polish zloty", 43_100),
    ("Swedish kronor", 114_500),
    ("Czech koruna", 251_200),
    ("Turkish lira", 350_000),
    ("Canadian dollars", 14_800),
    ("Norwegian kroner", 116_900),
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const DEVICES: &[&str] = &[
    "Pixel 8",
    "Galaxy S23",
    "iPhone 14",
    "iPhone 12",
    "OnePlus 11",
    "Xperia 5",
    "Moto G84",
    "Galaxy A54",
    "Fairphone 5",
];
