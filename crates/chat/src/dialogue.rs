//! The conversation around the intent model: a reply per intent, slot questions where a reply
//! needs a detail (the order date of a card that has not arrived), a clarifying question when the
//! two best intents are close, and a hand-off to a human when the input is out of scope twice in a
//! row or the customer asks for one. Sessions are kept per id, expire after a while of silence,
//! and are bounded in number (the least recently used goes first).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::data::{Catalog, IntentSpec, Slot, SlotKind};
use crate::model::Prediction;

/// The intent that means "let me talk to a person".
pub const HUMAN_AGENT_INTENT: &str = "human_agent";

/// What the bot did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Answer,
    AskSlot,
    Clarify,
    Handoff,
    Rephrase,
}

/// The bot's side of one exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub reply: String,
    /// The intent the reply is about (None when out of scope).
    pub intent: Option<String>,
    pub action: Action,
}

impl Turn {
    pub fn handoff(&self) -> bool {
        self.action == Action::Handoff
    }
}

/// Knobs of the conversation policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Ask which one was meant when the top two probabilities differ by less than this.
    pub clarify_margin: f32,
    /// Hand off after this many out-of-scope messages in a row.
    pub max_misunderstood: usize,
    /// A slot question is asked at most this many times before answering without the detail.
    pub max_slot_attempts: usize,
    /// A session silent this long is forgotten.
    pub session_ttl: Duration,
    /// At most this many sessions are kept.
    pub max_sessions: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            clarify_margin: 0.15,
            max_misunderstood: 2,
            max_slot_attempts: 2,
            session_ttl: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
        }
    }
}

#[derive(Debug, Clone)]
enum Pending {
    /// Filling `intent`'s slots: values so far, attempts at the current one.
    Slots {
        intent: usize,
        values: Vec<(String, String)>,
        attempts: usize,
    },
    /// Waiting for "1" or "2" between two intents.
    Choice { options: [usize; 2] },
}

#[derive(Debug, Clone)]
struct Session {
    pending: Option<Pending>,
    misunderstood: usize,
    last_seen: Instant,
}

/// Replies and per-session state. `labels` are the model's intents in order; an intent the
/// catalog does not know gets a generic reply naming it.
pub struct Dialogue {
    labels: Vec<String>,
    specs: Vec<Option<IntentSpec>>,
    policy: Policy,
    sessions: HashMap<String, Session>,
}

impl Dialogue {
    pub fn new(catalog: &Catalog, labels: &[String], policy: Policy) -> Self {
        Self {
            labels: labels.to_vec(),
            specs: labels.iter().map(|l| catalog.intent(l).cloned()).collect(),
            policy,
            sessions: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many sessions are live.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets sessions silent for longer than the policy's TTL; returns how many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.policy.session_ttl;
        let before = self.sessions.len();
        self.sessions
            .retain(|_, s| now.saturating_duration_since(s.last_seen) < ttl);
        before - self.sessions.len()
    }

    /// Answers `message` in session `session_id`, given the model's `prediction` for it.
    pub fn respond(&mut self, session_id: &str, message: &str, prediction: &Prediction) -> Turn {
        self.respond_at(session_id, message, prediction, Instant::now())
    }

    /// As [`Dialogue::respond`] at a given time (tests move the clock).
    pub fn respond_at(
        &mut self,
        session_id: &str,
        message: &str,
        prediction: &Prediction,
        now: Instant,
    ) -> Turn {
        let mut session = self.take_session(session_id, now);
        let turn = self.next_turn(&mut session, message, prediction);
        session.last_seen = now;
        self.sessions.insert(session_id.to_string(), session);
        turn
    }

    fn take_session(&mut self, id: &str, now: Instant) -> Session {
        if let Some(session) = self.sessions.remove(id)
            && now.saturating_duration_since(session.last_seen) < self.policy.session_ttl
        {
            return session;
        }
        if self.sessions.len() >= self.policy.max_sessions.max(1) {
            self.expire(now);
        }
        if self.sessions.len() >= self.policy.max_sessions.max(1) {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.sessions.remove(&oldest);
            }
        }
        Session {
            pending: None,
            misunderstood: 0,
            last_seen: now,
        }
    }

    fn next_turn(&self, session: &mut Session, message: &str, prediction: &Prediction) -> Turn {
        match session.pending.take() {
            Some(Pending::Slots {
                intent,
                values,
                attempts,
            }) if !self.confident_elsewhere(prediction, intent) => {
                return self.fill_slot(session, intent, values, attempts, message);
            }
            Some(Pending::Choice { options }) => {
                if let Some(choice) = pick_option(message, &options, &self.labels) {
                    session.misunderstood = 0;
                    return self.start_intent(session, choice);
                }
            }
            _ => {}
        }
        if !prediction.in_scope {
            session.misunderstood += 1;
            if session.misunderstood >= self.policy.max_misunderstood {
                session.misunderstood = 0;
                return Turn {
                    reply:
                        "I'm sorry, I still can't help with that. I'm handing you over to a human \
                            agent, who will reply here shortly."
                            .into(),
                    intent: None,
                    action: Action::Handoff,
                };
            }
            return Turn {
                reply:
                    "Sorry, I didn't understand that. I can help with cards, transfers, payments \
                        and your account: could you say it another way?"
                        .into(),
                intent: None,
                action: Action::Rephrase,
            };
        }
        session.misunderstood = 0;
        if let Some(&(second, p2)) = prediction.alternatives.first()
            && prediction.confidence - p2 < self.policy.clarify_margin
        {
            let options = [prediction.label, second];
            session.pending = Some(Pending::Choice { options });
            return Turn {
                reply: format!(
                    "Just to be sure: is this about {} (reply 1) or {} (reply 2)?",
                    self.title(options[0]),
                    self.title(options[1])
                ),
                intent: Some(self.labels[prediction.label].clone()),
                action: Action::Clarify,
            };
        }
        self.start_intent(session, prediction.label)
    }

    /// True when the model confidently names an intent other than the one whose slot is pending:
    /// the customer changed the subject.
    fn confident_elsewhere(&self, prediction: &Prediction, pending: usize) -> bool {
        prediction.in_scope
            && prediction.label != pending
            && prediction
                .alternatives
                .first()
                .is_none_or(|&(_, p2)| prediction.confidence - p2 >= self.policy.clarify_margin)
            && prediction.confidence >= 0.5
    }

    fn start_intent(&self, session: &mut Session, intent: usize) -> Turn {
        if self.labels[intent] == HUMAN_AGENT_INTENT {
            return Turn {
                reply: self.specs[intent].as_ref().map_or_else(
                    || "I'm handing you over to a human agent.".to_string(),
                    |s| s.reply.clone(),
                ),
                intent: Some(self.labels[intent].clone()),
                action: Action::Handoff,
            };
        }
        match self.slots(intent).first() {
            Some(slot) => {
                session.pending = Some(Pending::Slots {
                    intent,
                    values: Vec::new(),
                    attempts: 1,
                });
                self.ask(intent, slot)
            }
            None => self.answer(intent, &[]),
        }
    }

    fn fill_slot(
        &self,
        session: &mut Session,
        intent: usize,
        mut values: Vec<(String, String)>,
        attempts: usize,
        message: &str,
    ) -> Turn {
        let slots = self.slots(intent);
        let slot = &slots[values.len()];
        let value = message.trim();
        if looks_like(slot.kind, value) {
            values.push((slot.name.clone(), value.to_string()));
        } else if attempts < self.policy.max_slot_attempts {
            session.pending = Some(Pending::Slots {
                intent,
                values,
                attempts: attempts + 1,
            });
            return self.ask(intent, slot);
        } else {
            // Asked enough: answer with a neutral stand-in rather than loop.
            values.push((slot.name.clone(), stand_in(slot.kind).to_string()));
        }
        match slots.get(values.len()) {
            Some(next) => {
                session.pending = Some(Pending::Slots {
                    intent,
                    values,
                    attempts: 1,
                });
                self.ask(intent, next)
            }
            None => self.answer(intent, &values),
        }
    }

    fn slots(&self, intent: usize) -> &[Slot] {
        self.specs[intent]
            .as_ref()
            .map_or(&[], |s| s.slots.as_slice())
    }

    fn ask(&self, intent: usize, slot: &Slot) -> Turn {
        Turn {
            reply: slot.prompt.clone(),
            intent: Some(self.labels[intent].clone()),
            action: Action::AskSlot,
        }
    }

    fn answer(&self, intent: usize, values: &[(String, String)]) -> Turn {
        let reply = match &self.specs[intent] {
            Some(spec) => values
                .iter()
                .fold(spec.reply.clone(), |reply, (name, value)| {
                    reply.replace(&format!("{{{name}}}"), value)
                }),
            None => format!(
                "This sounds like a question about {}. I have no written answer for it yet; a \
                 human agent can help.",
                self.title(intent)
            ),
        };
        Turn {
            reply,
            intent: Some(self.labels[intent].clone()),
            action: Action::Answer,
        }
    }

    /// An intent's name as words ("card_arrival" → "card arrival").
    fn title(&self, intent: usize) -> String {
        self.labels[intent].replace('_', " ")
    }
}

fn stand_in(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Date => "that date",
        SlotKind::Amount => "that amount",
        SlotKind::Text => "that",
    }
}

/// Words that make an answer a date (besides any digit), matched whole, plurals included.
const DATE_WORDS: [&str; 43] = [
    "today",
    "yesterday",
    "ago",
    "last",
    "week",
    "month",
    "day",
    "fortnight",
    "morning",
    "evening",
    "night",
    "weekend",
    "recently",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
];

/// Whether `value` could answer a slot of `kind`: a date has a digit or a date word (whole
/// words: "dec" or "december", not "decide"), an amount has a digit, text is anything non-empty.
pub fn looks_like(kind: SlotKind, value: &str) -> bool {
    let lower = value.to_lowercase();
    match kind {
        SlotKind::Date => {
            lower.chars().any(|c| c.is_ascii_digit())
                || lower.split(|c: char| !c.is_alphanumeric()).any(|w| {
                    DATE_WORDS.contains(&w)
                        || DATE_WORDS.contains(&w.trim_end_matches('s'))
                        || w == "dec"
                })
        }
        SlotKind::Amount => lower.chars().any(|c| c.is_ascii_digit()),
        SlotKind::Text => !lower.trim().is_empty(),
    }
}

/// Reads the answer to a clarifying question: "1", "2", "the first", "second", or an option's
/// name ("card arrival").
fn pick_option(message: &str, options: &[usize; 2], labels: &[String]) -> Option<usize> {
    let lower = message.trim().to_lowercase();
    let named: Vec<usize> = options
        .iter()
        .copied()
        .filter(|&o| lower.contains(&labels[o].replace('_', " ")))
        .collect();
    if let [only] = named[..] {
        return Some(only);
    }
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let says = |w: &[&str]| words.iter().any(|x| w.contains(x));
    match (
        says(&["1", "first", "former"]),
        says(&["2", "second", "latter"]),
    ) {
        (true, false) => Some(options[0]),
        (false, true) => Some(options[1]),
        _ => None,
    }
}
