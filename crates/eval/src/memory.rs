//! Memory a model takes: resident and peak resident memory of this process (Linux), the peak
//! during one call, and the memory in use on each NVIDIA GPU.
//!
//! A compressed model is smaller on disk by construction; what matters to a deployment is the
//! memory it needs while running, and the peak is what decides whether it fits. Linux keeps the
//! process's peak resident set (`VmHWM`, high-water mark) beside the current one (`VmRSS`) in
//! `/proc/self/status`, and lets a process reset that peak (writing `5` to `/proc/self/clear_refs`,
//! Linux 4.0 and later), so the peak of one call can be read without sampling. Both are
//! process-wide: allocations made meanwhile by other threads count too.
//!
//! GPU memory comes from `nvidia-smi`, because candle (0.11) exposes no memory query. That is the
//! whole device as the driver sees it: every process's allocations, CUDA's context (a few hundred
//! MiB), and what candle's caching allocator keeps after tensors are dropped; the resolution is
//! 1 MiB. Compare two readings taken the same way, never one reading with a tensor's size.
//!
//! ```
//! use eval::memory::{measure_peak, parse_proc_status};
//!
//! let status = "Name:\tdemo\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
//! let memory = parse_proc_status(status)?;
//! assert_eq!((memory.peak_resident_bytes, memory.resident_bytes), (2 << 20, 1 << 20));
//!
//! # if cfg!(target_os = "linux") {
//! // 64 MiB written page by page raises this process's peak by about that much.
//! let (len, delta) = measure_peak(|| Ok(std::hint::black_box(vec![1u8; 64 << 20]).len()))?;
//! assert_eq!(len, 64 << 20);
//! assert!(delta.peak_increase_bytes() > 48 << 20);
//! # }
//! # Ok::<(), eval::Error>(())
//! ```

use std::io::ErrorKind;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where Linux reports this process's memory.
const PROC_STATUS: &str = "/proc/self/status";
/// Writing "5" here resets the peak resident set to the current one.
const PROC_CLEAR_REFS: &str = "/proc/self/clear_refs";

/// Resident memory of this process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// Pages in RAM now (`VmRSS`).
    pub resident_bytes: u64,
    /// The most pages in RAM at any time since the start or the last [`reset_peak`] (`VmHWM`).
    pub peak_resident_bytes: u64,
}

/// The resident memory of this process around one call (see [`measure_peak`]), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryDelta {
    /// Resident memory just before the call.
    pub before_bytes: u64,
    /// The peak resident memory read after the call.
    pub peak_bytes: u64,
    /// Resident memory just after the call (freed memory the allocator keeps still counts).
    pub after_bytes: u64,
    /// Whether `peak_bytes` is the peak during the call. It is when the peak could be reset first,
    /// or when it rose during the call; otherwise it is an older, higher peak and only an upper
    /// bound.
    pub exact: bool,
}

impl MemoryDelta {
    /// How far the peak rose above the memory held before the call: what the call needed on top.
    pub fn peak_increase_bytes(&self) -> u64 {
        self.peak_bytes.saturating_sub(self.before_bytes)
    }
}

/// This process's current and peak resident memory, read from `/proc/self/status`. An error
/// where that file does not exist (any system but Linux) or lacks the two lines.
pub fn process_memory() -> Result<ProcessMemory> {
    let status = std::fs::read_to_string(PROC_STATUS).map_err(|e| Error::Unavailable {
        what: "process memory",
        reason: format!("cannot read {PROC_STATUS} ({e}): it exists only on Linux"),
    })?;
    parse_proc_status(&status)
}

/// The `VmRSS` and `VmHWM` lines of a `/proc/<pid>/status` text, converted from kB (which Linux
/// means as KiB) to bytes.
pub fn parse_proc_status(status: &str) -> Result<ProcessMemory> {
    Ok(ProcessMemory {
        resident_bytes: status_field(status, "VmRSS")?,
        peak_resident_bytes: status_field(status, "VmHWM")?,
    })
}

/// One `Key:   1234 kB` line of a status text, in bytes.
fn status_field(status: &str, key: &'static str) -> Result<u64> {
    let unavailable = |reason: String| Error::Unavailable {
        what: "process memory",
        reason,
    };
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .ok_or_else(|| unavailable(format!("{PROC_STATUS} has no {key} line")))?;
    let bytes = match line.split_whitespace().collect::<Vec<_>>()[..] {
        [number, "kB"] => number
            .parse::<u64>()
            .ok()
            .and_then(|kib| kib.checked_mul(1024)),
        _ => None,
    }
    .ok_or_else(|| {
        unavailable(format!(
            "{PROC_STATUS} line `{key}: {}` is not `<number> kB`",
            line.trim()
        ))
    })?;
    Ok(bytes)
}

/// Resets this process's peak resident memory to the current one, so that a later
/// [`process_memory`] reports the peak since now. An error where Linux does not allow it (kernels
/// before 4.0, sandboxes that hide `/proc/self/clear_refs`).
pub fn reset_peak() -> Result<()> {
    std::fs::write(PROC_CLEAR_REFS, "5").map_err(|e| Error::Unavailable {
        what: "resetting the peak resident memory",
        reason: format!("cannot write to {PROC_CLEAR_REFS}: {e}"),
    })
}

/// Runs `f` and reports this process's resident memory before it, at its peak, and after it.
///
/// The peak is reset first where Linux allows it; where not, the result says so
/// ([`MemoryDelta::exact`]) rather than failing. `f`'s error is returned as is.
pub fn measure_peak<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, MemoryDelta)> {
    let was_reset = reset_peak().is_ok();
    let before = process_memory()?;
    let value = f()?;
    let after = process_memory()?;
    let delta = MemoryDelta {
        before_bytes: before.resident_bytes,
        peak_bytes: after.peak_resident_bytes,
        after_bytes: after.resident_bytes,
        exact: was_reset || after.peak_resident_bytes > before.peak_resident_bytes,
    };
    Ok((value, delta))
}

/// Memory in use on each NVIDIA GPU in bytes, in `nvidia-smi`'s order, from `nvidia-smi
/// --query-gpu=memory.used --format=csv,noheader,nounits`.
///
/// Whole-device memory, all processes included, at 1 MiB resolution. `nvidia-smi` numbers GPUs by
/// PCI bus and ignores `CUDA_VISIBLE_DEVICES`, so its index 0 need not be candle's `cuda:0`. An
/// error when `nvidia-smi` is missing (no NVIDIA driver) or fails.
pub fn gpu_memory_used() -> Result<Vec<u64>> {
    let unavailable = |reason: String| Error::Unavailable {
        what: "GPU memory",
        reason,
    };
    let output = Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .map_err(|e| {
            unavailable(if e.kind() == ErrorKind::NotFound {
                "nvidia-smi is not on PATH (it comes with the NVIDIA driver)".into()
            } else {
                format!("cannot run nvidia-smi: {e}")
            })
        })?;
    if !output.status.success() {
        return Err(unavailable(format!(
            "nvidia-smi failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout))
}

/// The output of `nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits`, one MiB count
/// per GPU and line, in bytes.
pub fn parse_nvidia_smi(output: &str) -> Result<Vec<u64>> {
    let used: Vec<u64> = output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(gpu, line)| {
            // A GPU in MIG mode, or one the driver cannot query, reports "[N/A]" or "[Not Supported]".
            line.parse::<u64>()
                .map(|mib| mib << 20)
                .map_err(|_| Error::Unavailable {
                    what: "GPU memory",
                    reason: format!(
                        "nvidia-smi reports {line:?} for GPU {gpu}, not a number of MiB"
                    ),
                })
        })
        .collect::<Result<_>>()?;
    if used.is_empty() {
        return Err(Error::Unavailable {
            what: "GPU memory",
            reason: "nvidia-smi lists no GPU".into(),
        });
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_in_bytes() {
        let status =
            "Name:\tcargo\nVmPeak:\t  900000 kB\nVmHWM:\t    1716 kB\nVmRSS:\t    1500 kB\n";
        assert_eq!(
            parse_proc_status(status).unwrap(),
            ProcessMemory {
                resident_bytes: 1500 * 1024,
                peak_resident_bytes: 1716 * 1024,
            }
        );
    }

    #[test]
    fn a_missing_or_malformed_status_line_is_an_error_naming_it() {
        let missing = parse_proc_status("VmRSS:\t 12 kB\n").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "process memory is unavailable: /proc/self/status has no VmHWM line"
        );
        let huge = format!("VmRSS:\t {} kB\nVmHWM:\t 12 kB\n", u64::MAX / 1000);
        assert!(matches!(
            parse_proc_status(&huge),
            Err(Error::Unavailable { .. })
        ));
        let malformed = parse_proc_status("VmRSS:\t 12 MB\nVmHWM:\t 12 kB\n").unwrap_err();
        assert_eq!(
            malformed.to_string(),
            "process memory is unavailable: /proc/self/status line `VmRSS: 12 MB` is not `<number> kB`"
        );
    }

    #[test]
    fn nvidia_smi_output_is_read_per_gpu_in_bytes() {
        assert_eq!(
            parse_nvidia_smi("0\n81079\n").unwrap(),
            vec![0, 81079 << 20]
        );
        let mig = parse_nvidia_smi("512\n[N/A]\n").unwrap_err();
        assert_eq!(
            mig.to_string(),
            "GPU memory is unavailable: nvidia-smi reports \"[N/A]\" for GPU 1, not a number of MiB"
        );
        assert!(matches!(
            parse_nvidia_smi("\n"),
            Err(Error::Unavailable { .. })
        ));
    }

    #[test]
    fn gpu_memory_is_a_list_or_an_error_never_a_panic() {
        // Either machine the tests run on: a GPU one reads numbers, any other says why it cannot.
        match gpu_memory_used() {
            Ok(used) => assert!(!used.is_empty()),
            Err(e) => assert!(
                matches!(
                    e,
                    Error::Unavailable {
                        what: "GPU memory",
                        ..
                    }
                ),
                "{e}"
            ),
        }
    }

    /// The one test that resets the peak: tests run in parallel threads of one process, and a second
    /// reset during this measurement would lower the peak it reads.
    #[cfg(target_os = "linux")]
    #[test]
    fn touching_200_mb_raises_the_peak_by_at_least_150_mb() {
        const MB: u64 = 1_000_000;
        let (len, delta) = measure_peak(|| {
            // `vec![1; n]` writes every byte, so every page becomes resident; zeros would come
            // from calloc untouched and cost no RAM.
            let block = vec![1u8; 200 * MB as usize];
            Ok(std::hint::black_box(block).len())
        })
        .unwrap();
        assert_eq!(len, 200 * MB as usize);
        assert!(
            delta.peak_increase_bytes() >= 150 * MB,
            "the peak rose by {} bytes: {delta:?}",
            delta.peak_increase_bytes()
        );
        assert!(delta.peak_bytes >= delta.after_bytes);
        assert!(delta.exact, "{delta:?}");
        let now = process_memory().unwrap();
        assert!(now.peak_resident_bytes >= now.resident_bytes);
    }
}
