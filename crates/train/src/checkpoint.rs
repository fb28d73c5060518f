//! Checkpoints: a directory holding `model.safetensors` (the `VarMap`'s parameters by name),
//! `optimizer.safetensors` (each parameter's step and moments), `trainer_state.json` (step, RNG
//! position, early-stopping state and the whole `TrainerConfig`) and, when the run keeps its best
//! parameters, `best_model.safetensors`.
//!
//! The files are written into a fresh temp directory beside the target, which is then renamed
//! into place; an existing checkpoint is first renamed aside and removed only after the new one
//! stands. A crash while writing leaves the old checkpoint whole (and a `.tmp-checkpoint-*`
//! directory to delete); a crash between the two renames, a window of two system calls, leaves
//! it under `.tmp-checkpoint-*.old`. Loading checks every file before touching the model, so a
//! damaged or foreign checkpoint fails with the file and parameter at fault and changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io};
use crate::trainer::{Evaluation, TrainerConfig};

/// The parameters, by `VarMap` name: loadable alone, like any safetensors checkpoint.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimizer state, `{param}.step` and `{param}.exp_avg` etc.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Step, RNG, early-stopping state and config, as JSON (transformers uses the same name).
pub const STATE_FILE: &str = "trainer_state.json";
/// Present only when the run keeps its best parameters (`TrainerConfig::restore_best`).
pub const BEST_MODEL_FILE: &str = "best_model.safetensors";
/// The files every checkpoint has.
pub const FILES: [&str; 3] = [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE];
/// Ends the message of a damaged checkpoint file: what the user can do about it.
pub(crate) const DAMAGED_HINT: &str = "resume from another checkpoint or start over";

/// Bumped when `trainer_state.json` changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Where a ChaCha8 stream stands: seed, stream and word position restore it exactly, wherever the
/// run stopped (the `u128` position is a string because JSON numbers lose bits past 2⁵³).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte key in hex.
    pub seed: String,
    /// The ChaCha stream number (0 unless set).
    pub stream: u64,
    /// How many 32-bit words of the stream were used, in decimal.
    pub word_pos: String,
}

impl RngState {
    /// Where `rng` stands now.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// A generator that continues exactly where the captured one stood; the error says which
    /// field is malformed.
    pub fn restore(&self) -> std::result::Result<ChaCha8Rng, String> {
        let bytes = self.seed.as_bytes();
        if bytes.len() != 64 {
            return Err(format!(
                "rng seed has {} hex digits, expected 64",
                bytes.len()
            ));
        }
        let mut seed = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            seed[i] = u8::from_str_radix(digits, 16)
                .map_err(|_| format!("rng seed {:?} is not hex", self.seed))?;
        }
        let word_pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| format!("rng word_pos {:?} is not a number", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// `trainer_state.json`: everything besides tensors that a resumed run needs to continue as if
/// it had never stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// Optimizer steps done.
    pub step: usize,
    /// The run's settings, so a resume needs nothing but the directory.
    pub config: TrainerConfig,
    /// The batch closure's random stream.
    pub rng: RngState,
    /// The lowest evaluation loss so far.
    pub best: Option<Evaluation>,
    /// The early-stopping counter.
    pub evals_without_improvement: usize,
    /// Whether patience already ran out (a resume then does nothing more).
    pub stopped_early: bool,
}

/// A checkpoint read back, every file parsed, nothing yet applied to a model.
#[derive(Debug)]
pub struct Checkpoint {
    /// Where it was read from.
    pub dir: PathBuf,
    /// [`MODEL_FILE`]'s tensors.
    pub model: HashMap<String, Tensor>,
    /// [`OPTIMIZER_FILE`]'s tensors.
    pub optimizer: HashMap<String, Tensor>,
    /// [`STATE_FILE`], parsed.
    pub state: TrainerState,
    /// [`BEST_MODEL_FILE`]'s tensors, when there is one.
    pub best_model: Option<HashMap<String, Tensor>>,
}

/// Writes a checkpoint directory atomically (see the module doc), replacing one already there.
pub fn save(
    dir: &Path,
    model: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    state: &TrainerState,
    best_model: Option<&[(String, Tensor)]>,
) -> Result<()> {
    models::atomic_dir::write_dir_atomically(
        dir,
        ".tmp-checkpoint-",
        |temp| {
            write_safetensors(&temp.join(MODEL_FILE), model)?;
            write_safetensors(&temp.join(OPTIMIZER_FILE), optimizer)?;
            if let Some(best) = best_model {
                write_safetensors(&temp.join(BEST_MODEL_FILE), best)?;
            }
            let json = serde_json::to_string_pretty(state).map_err(|e| {
                crate::error::invalid(format!("cannot encode the trainer state: {e}"))
            })?;
            let state_path = temp.join(STATE_FILE);
            std::fs::write(&state_path, json).map_err(io("write", &state_path))?;
            sync(&state_path)?;
            Ok(())
        },
        |action, path, e| io(action, path)(e),
    )
}

fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    candle_core::safetensors::save(&map, path).map_err(|e| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    sync(path)
}

/// Flushes a written file to disk, so the rename that publishes it never outruns its data.
fn sync(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

/// Reads and parses every file of the checkpoint in `dir`, tensors onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let model = read_safetensors(&dir.join(MODEL_FILE), device)?;
    let optimizer = read_safetensors(&dir.join(OPTIMIZER_FILE), device)?;
    let state = read_state(&dir.join(STATE_FILE))?;
    let best_path = dir.join(BEST_MODEL_FILE);
    let best_model = if best_path.exists() {
        Some(read_safetensors(&best_path, device)?)
    } else {
        None
    };
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        model,
        optimizer,
        state,
        best_model,
    })
}

/// The tensors of a safetensors file, or an error saying whether it is missing or damaged.
pub fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = read(path)?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| Error::CorruptFile {
        path: path.to_path_buf(),
        message: format!("not a valid safetensors file ({e}); {DAMAGED_HINT}"),
    })
}

fn read_state(path: &Path) -> Result<TrainerState> {
    let bytes = read(path)?;
    let corrupt = |message: String| Error::CorruptFile {
        path: path.to_path_buf(),
        message: format!("{message}; {DAMAGED_HINT}"),
    };
    let state: TrainerState = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("not a valid trainer state: {e}")))?;
    if state.format_version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format_version is {}, this build reads {FORMAT_VERSION}",
            state.format_version
        )));
    }
    state
        .rng
        .restore()
        .map_err(|message| corrupt(message.to_string()))?;
    Ok(state)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Checks that `tensors` (read from `path`) hold exactly the model's parameters with the same
/// shapes, and returns them in `params` order, on the parameter's device and dtype. Every
/// difference is listed, so one run of the error shows a renamed layer and its shapes together.
pub fn match_parameters(
    tensors: &HashMap<String, Tensor>,
    params: &[(String, Var)],
    path: &Path,
) -> Result<Vec<Tensor>> {
    let mut problems = Vec::new();
    let mut matched = Vec::with_capacity(params.len());
    for (name, var) in params {
        match tensors.get(name) {
            None => problems.push(format!("parameter {name} is missing from the file")),
            Some(tensor) if tensor.dims() != var.dims() => problems.push(format!(
                "parameter {name} has shape {:?} in the file but {:?} in the model",
                tensor.dims(),
                var.dims()
            )),
            Some(tensor) => {
                matched.push(tensor.to_device(var.device())?.to_dtype(var.dtype())?);
            }
        }
    }
    let names: std::collections::HashSet<&str> =
        params.iter().map(|(name, _)| name.as_str()).collect();
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|key| !names.contains(key.as_str()))
        .collect();
    extra.sort();
    problems.extend(
        extra
            .into_iter()
            .map(|key| format!("tensor {key} in the file is not a parameter of the model")),
    );
    if !problems.is_empty() {
        let shown = problems.len().min(6);
        let mut message = problems[..shown].join("; ");
        if problems.len() > shown {
            message.push_str(&format!("; and {} more", problems.len() - shown));
        }
        return Err(Error::Mismatch {
            path: path.to_path_buf(),
            message,
        });
    }
    Ok(matched)
}

/// Loads a `model.safetensors` (from a checkpoint or `VarMap::save`) into the model's `Var`s,
/// after checking names and shapes; on any mismatch the model is left untouched.
pub fn load_parameters(path: &Path, params: &[(String, Var)]) -> Result<()> {
    let device = params
        .first()
        .map(|(_, var)| var.device().clone())
        .unwrap_or(Device::Cpu);
    let tensors = read_safetensors(path, &device)?;
    let values = match_parameters(&tensors, params, path)?;
    for ((_, var), value) in params.iter().zip(values) {
        var.set(&value)?;
    }
    Ok(())
}
