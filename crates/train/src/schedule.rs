//! Learning-rate schedules as transformers writes them (`optimization.py`): a multiplier λ(step)
//! on the optimizer's base learning rate, the way torch's `LambdaLR` applies it.
//!
//! Optimizer step `s` (0-based: the number of steps already taken) uses `base_lr · λ(s)`, so
//! under warm-up the very first step has learning rate 0, exactly as in transformers' `Trainer`.

use serde::{Deserialize, Serialize};

/// The shape of the decay after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// Stay at the base rate (`get_constant_schedule[_with_warmup]`).
    Constant,
    /// Straight down to 0 at `total_steps` (`get_linear_schedule_with_warmup`).
    Linear,
    /// Half a cosine down to 0 at `total_steps` (`get_cosine_schedule_with_warmup`,
    /// `num_cycles = 0.5`). Like transformers it does not clamp past `total_steps`, where the
    /// cosine rises again: set `total_steps` to the run's length.
    Cosine,
}

/// Linear warm-up from 0 over `warmup_steps`, then `decay` until `total_steps`.
///
/// ```
/// use train::schedule::Schedule;
/// let s = Schedule::linear(10, 110);
/// assert_eq!(s.factor(0), 0.0);
/// assert_eq!(s.factor(5), 0.5);
/// assert_eq!(s.factor(10), 1.0);
/// assert_eq!(s.factor(60), 0.5);
/// assert_eq!(s.lr_at(1e-3, 110), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// What happens after warm-up.
    pub decay: Decay,
    /// Steps of linear warm-up from 0: Adam's second moment starts from nothing, and the first
    /// steps would be too large at the full rate.
    pub warmup_steps: usize,
    /// Where linear and cosine decay reach 0; ignored by `Constant`.
    pub total_steps: usize,
}

impl Schedule {
    /// The base rate throughout: what a lesson wants when it studies the optimizer alone.
    pub fn constant() -> Self {
        Self {
            decay: Decay::Constant,
            warmup_steps: 0,
            total_steps: 0,
        }
    }

    /// transformers' `get_linear_schedule_with_warmup`, the default of its `Trainer`.
    pub fn linear(warmup_steps: usize, total_steps: usize) -> Self {
        Self {
            decay: Decay::Linear,
            warmup_steps,
            total_steps,
        }
    }

    /// transformers' `get_cosine_schedule_with_warmup`: stays near the peak longer, then
    /// lands softly.
    pub fn cosine(warmup_steps: usize, total_steps: usize) -> Self {
        Self {
            decay: Decay::Cosine,
            warmup_steps,
            total_steps,
        }
    }

    /// λ(step), the multiplier on the base learning rate; the `max(1, ·)` guards and the clamp
    /// at 0 are transformers' own, so a zero-length warm-up or decay divides by nothing.
    pub fn factor(&self, step: usize) -> f64 {
        let (step, warmup, total) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        if step < warmup {
            return step / warmup.max(1.0);
        }
        let progress = (step - warmup) / (total - warmup).max(1.0);
        match self.decay {
            Decay::Constant => 1.0,
            Decay::Linear => ((total - step) / (total - warmup).max(1.0)).max(0.0),
            Decay::Cosine => (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0),
        }
    }

    /// The learning rate for optimizer step `step` (0-based).
    pub fn lr_at(&self, base_lr: f64, step: usize) -> f64 {
        base_lr * self.factor(step)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self::constant()
    }
}
