//! Named, timed phases: every long workflow prints how long each step took.

use std::time::{Duration, Instant};

use anyhow::Result;

#[derive(Default)]
pub struct Phases {
    done: Vec<(String, Duration, bool)>,
}

impl Phases {
    /// Runs one phase, printing its start and duration; a failure is recorded and returned.
    pub fn run<T>(&mut self, name: &str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!("\n==> {name}");
        let start = Instant::now();
        let result = phase();
        let elapsed = start.elapsed();
        eprintln!("<== {name}: {:.1}s", elapsed.as_secs_f64());
        self.done.push((name.to_string(), elapsed, result.is_ok()));
        result
    }

    /// The table of phase times, printed at the end even when a phase failed.
    pub fn summary(&self) {
        eprintln!("\nphase times:");
        for (name, elapsed, ok) in &self.done {
            let status = if *ok { "ok" } else { "FAILED" };
            eprintln!("  {name:<28} {:>8.1}s  {status}", elapsed.as_secs_f64());
        }
        let total: Duration = self.done.iter().map(|(_, d, _)| *d).sum();
        eprintln!("  {:<28} {:>8.1}s", "total", total.as_secs_f64());
    }
}
