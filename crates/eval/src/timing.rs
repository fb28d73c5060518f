//! Latency of a closure: run it a few times to warm up, time each further run, and summarize the
//! samples by median and tail percentiles.
//!
//! Compression is sold on speed, so the number must be honest. The median, not the mean, is the
//! headline: one run preempted by another process moves the mean a lot and the median hardly at
//! all. p90 and p99 show the tail that the median hides. Warm-up runs are discarded because the
//! first calls pay for allocation, caches and (on a GPU) kernel compilation.
//!
//! Percentiles are numpy's default (`method="linear"`, R's type 7): on the sorted samples
//! `x[0..n]`, percentile `q` sits at the virtual index `h = (n − 1)·q/100` and is interpolated
//! linearly between `x[⌊h⌋]` and `x[⌊h⌋ + 1]`. So the 50th percentile is the usual median (the mean
//! of the two middle samples when `n` is even), and a percentile never leaves the samples' range.
//!
//! The closure must finish its work before it returns. candle queues GPU kernels asynchronously,
//! so a closure running on CUDA ends with `device.synchronize()?`, or it times only the launch.
//!
//! ```
//! use eval::timing::{Latency, measure, percentile};
//!
//! // Timing a real closure: the counts are exact, the durations are whatever the machine gives.
//! let mut calls = 0;
//! let latency = measure(3, 20, || {
//!     calls += 1;
//!     Ok(())
//! })?;
//! assert_eq!((calls, latency.samples.len(), latency.warmup), (23, 20, 3));
//! assert!(latency.min <= latency.median && latency.median <= latency.p99);
//!
//! // The statistics, on samples known in advance (seconds).
//! let latency = Latency::from_samples(vec![0.004, 0.001, 0.003, 0.002], 1)?;
//! assert!((latency.median - 0.0025).abs() < 1e-15); // (0.002 + 0.003) / 2
//! assert!((latency.throughput(8) - 3200.0).abs() < 1e-9); // 8 items per 2.5 ms
//! assert_eq!(latency.summary(), "median 2.50 ms, p90 3.70 ms (4 runs after 1 warm-up)");
//! assert!((percentile(&[15.0, 20.0, 35.0, 40.0, 50.0], 40.0)? - 29.0).abs() < 1e-12);
//! # Ok::<(), eval::Error>(())
//! ```

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Timed runs of one closure and their summary, all in seconds.
///
/// Serializable so that benchmark reports keep the raw samples beside the summary: a later reader
/// can recompute any other statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Each timed run in seconds, in the order they ran (warm-up runs excluded).
    pub samples: Vec<f64>,
    /// How many untimed runs came first.
    pub warmup: usize,
    /// The 50th percentile: the headline number.
    pub median: f64,
    /// The 90th percentile (numpy's linear method).
    pub p90: f64,
    /// The 99th percentile (numpy's linear method); with fewer than 100 samples it interpolates
    /// between the two slowest.
    pub p99: f64,
    /// The arithmetic mean.
    pub mean: f64,
    /// The fastest run: the closest to the work's own cost, with the least interference.
    pub min: f64,
    /// The slowest run.
    pub max: f64,
}

/// Runs `f` `warmup` times untimed, then `iterations` times timed, and summarizes the timed runs.
///
/// The first error from `f` stops the measurement and is returned. `iterations` must be at least 1
/// (a latency of no runs is undefined); `warmup` may be 0.
pub fn measure(
    warmup: usize,
    iterations: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Latency> {
    if iterations == 0 {
        return Err(Error::InvalidArgument {
            name: "iterations",
            value: "0".into(),
            reason: "need at least one timed run".into(),
        });
    }
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64());
    }
    Latency::from_samples(samples, warmup)
}

impl Latency {
    /// Summarizes samples measured elsewhere (seconds, e.g. CUDA events or another tool's log).
    /// They must be non-empty, finite and non-negative.
    pub fn from_samples(samples: Vec<f64>, warmup: usize) -> Result<Latency> {
        let sorted = sorted_checked(&samples)?;
        let n = sorted.len() as f64;
        Ok(Latency {
            median: percentile_sorted(&sorted, 50.0),
            p90: percentile_sorted(&sorted, 90.0),
            p99: percentile_sorted(&sorted, 99.0),
            mean: sorted.iter().sum::<f64>() / n,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            samples,
            warmup,
        })
    }

    /// Items per second at the median latency, where one call handles `items_per_call` items
    /// (a batch of sequences, the tokens of one generation). Infinite when the median is 0 s, which
    /// a clock coarser than the work can report.
    pub fn throughput(&self, items_per_call: usize) -> f64 {
        items_per_call as f64 / self.median
    }

    /// One line for logs and reports: `median 1.23 ms, p90 1.40 ms (20 runs after 3 warm-up)`,
    /// each duration in the unit that keeps it between 1 and 1000.
    pub fn summary(&self) -> String {
        format!(
            "median {}, p90 {} ({} runs after {} warm-up)",
            format_seconds(self.median),
            format_seconds(self.p90),
            self.samples.len(),
            self.warmup
        )
    }
}

/// The `q`-th percentile (0 ≤ q ≤ 100) of `samples` (any order) by numpy's default linear method:
/// `np.percentile(samples, q)`.
pub fn percentile(samples: &[f64], q: f64) -> Result<f64> {
    if !(0.0..=100.0).contains(&q) {
        return Err(Error::InvalidArgument {
            name: "q",
            value: q.to_string(),
            reason: "a percentile lies in 0..=100".into(),
        });
    }
    Ok(percentile_sorted(&sorted_checked(samples)?, q))
}

/// A sorted copy of `samples`, after checking they are non-empty, finite and non-negative.
fn sorted_checked(samples: &[f64]) -> Result<Vec<f64>> {
    if samples.is_empty() {
        return Err(Error::Empty {
            what: "the list of latency samples".into(),
        });
    }
    if let Some((index, &value)) = samples
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite() || **s < 0.0)
    {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: "the latency samples".into(),
                index,
                value,
            });
        }
        return Err(Error::InvalidArgument {
            name: "samples",
            value: format!("{value} at index {index}"),
            reason: "a duration cannot be negative".into(),
        });
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(sorted)
}

/// numpy's linear percentile of non-empty sorted finite samples, `q` in 0..=100.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * (q / 100.0);
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    lerp(sorted[below], sorted[above], h - h.floor())
}

/// `a + t·(b − a)` as numpy's `_lerp` computes it: from `b` backwards when `t ≥ 0.5`, so that
/// `t = 1` gives exactly `b` and the result matches numpy to the last bit.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Seconds in the unit that puts the number between 1 and 1000, two decimals: `1.23 ms`.
fn format_seconds(seconds: f64) -> String {
    let (value, unit) = if seconds >= 1.0 {
        (seconds, "s")
    } else if seconds >= 1e-3 {
        (seconds * 1e3, "ms")
    } else if seconds >= 1e-6 {
        (seconds * 1e6, "µs")
    } else {
        (seconds * 1e9, "ns")
    };
    format!("{value:.2} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.percentile(samples, q)` for each `(q, expected)`, to 1e-12.
    fn check(samples: &[f64], expected: &[(f64, f64)]) {
        for &(q, want) in expected {
            let got = percentile(samples, q).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "percentile {q} of {samples:?}: {got}, numpy gives {want}"
            );
        }
    }

    #[test]
    fn percentiles_match_numpys_linear_method() {
        // 1..=10: h = 9·q/100. q=50: h=4.5 → 5 + 0.5·1 = 5.5; q=90: h=8.1 → 9.1; q=99: h=8.91 →
        // 9.91; q=25: h=2.25 → 3.25; q=0 and q=100 are the extremes.
        let one_to_ten: Vec<f64> = (1..=10).map(f64::from).collect();
        check(
            &one_to_ten,
            &[
                (50.0, 5.5),
                (90.0, 9.1),
                (99.0, 9.91),
                (25.0, 3.25),
                (0.0, 1.0),
                (100.0, 10.0),
            ],
        );
        // Unsorted, uneven gaps: sorted [15, 20, 35, 40, 50], h = 4·q/100. q=40: h=1.6 →
        // 20 + 0.6·15 = 29; q=50: h=2 → 35; q=90: h=3.6 → 40 + 0.6·10 = 46; q=99: h=3.96 → 49.6.
        check(
            &[50.0, 15.0, 40.0, 20.0, 35.0],
            &[(40.0, 29.0), (50.0, 35.0), (90.0, 46.0), (99.0, 49.6)],
        );
        // One sample is every percentile; two give the midpoint as the median.
        check(&[7.0], &[(0.0, 7.0), (50.0, 7.0), (99.0, 7.0)]);
        check(&[1.0, 2.0], &[(50.0, 1.5), (90.0, 1.9), (99.0, 1.99)]);
    }

    #[test]
    fn latency_summarizes_known_samples() {
        // Milliseconds 1..=20 in a shuffled order: median h=9.5 → 10.5 ms; p90 h=17.1 → 18.1 ms;
        // p99 h=18.81 → 19.81 ms; mean 10.5 ms.
        let mut samples: Vec<f64> = (1..=20).map(|i| f64::from(i) * 1e-3).collect();
        samples.reverse();
        samples.swap(0, 7);
        let latency = Latency::from_samples(samples.clone(), 3).unwrap();
        assert_eq!(latency.samples, samples, "samples keep their run order");
        for (name, got, want) in [
            ("median", latency.median, 10.5e-3),
            ("p90", latency.p90, 18.1e-3),
            ("p99", latency.p99, 19.81e-3),
            ("mean", latency.mean, 10.5e-3),
            ("min", latency.min, 1e-3),
            ("max", latency.max, 20e-3),
        ] {
            assert!((got - want).abs() < 1e-15, "{name}: {got}, expected {want}");
        }
        assert!((latency.throughput(21) - 2000.0).abs() < 1e-9);
        assert_eq!(
            latency.summary(),
            "median 10.50 ms, p90 18.10 ms (20 runs after 3 warm-up)"
        );
    }

    #[test]
    fn measure_runs_warmup_then_timed_calls_and_stops_at_the_first_error() {
        let mut calls = 0;
        let latency = measure(2, 5, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 7);
        assert_eq!((latency.samples.len(), latency.warmup), (5, 2));
        assert!(latency.samples.iter().all(|s| s.is_finite() && *s >= 0.0));

        let mut calls = 0;
        let failing = measure(1, 10, || {
            calls += 1;
            if calls == 4 {
                Err(Error::Empty {
                    what: "the fourth batch".into(),
                })
            } else {
                Ok(())
            }
        });
        assert!(matches!(failing, Err(Error::Empty { .. })));
        assert_eq!(calls, 4);
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let zero = measure(3, 0, || Ok(())).unwrap_err().to_string();
        assert_eq!(
            zero,
            "iterations = 0 is invalid: need at least one timed run"
        );
        let empty = Latency::from_samples(vec![], 0).unwrap_err().to_string();
        assert_eq!(
            empty,
            "the list of latency samples is empty: nothing to score"
        );
        let nan = Latency::from_samples(vec![1.0, f64::NAN], 0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            nan,
            "the latency samples holds NaN at index 1: need finite numbers"
        );
        assert!(matches!(
            Latency::from_samples(vec![-1.0], 0),
            Err(Error::InvalidArgument {
                name: "samples",
                ..
            })
        ));
        assert!(matches!(
            percentile(&[1.0], 100.5),
            Err(Error::InvalidArgument { name: "q", .. })
        ));
        assert!(matches!(
            percentile(&[1.0], f64::NAN),
            Err(Error::InvalidArgument { name: "q", .. })
        ));
    }

    #[test]
    fn durations_are_printed_in_a_readable_unit() {
        assert_eq!(format_seconds(2.5), "2.50 s");
        assert_eq!(format_seconds(0.00123), "1.23 ms");
        assert_eq!(format_seconds(4.56e-5), "45.60 µs");
        assert_eq!(format_seconds(7e-8), "70.00 ns");
    }

    #[test]
    fn latency_round_trips_through_json() {
        let latency = Latency::from_samples(vec![0.002, 0.001], 1).unwrap();
        let json = serde_json::to_string(&latency).unwrap();
        assert!(json.contains("\"median\":0.0015"), "{json}");
        assert_eq!(serde_json::from_str::<Latency>(&json).unwrap(), latency);
    }
}
