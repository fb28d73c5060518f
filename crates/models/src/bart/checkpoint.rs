//! Loading BART from a local directory (config.json + model.safetensors) or, with the `hub`
//! feature, from the Hugging Face hub.

use std::path::Path;

use candle_core::safetensors::BufferedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;

use super::config::Config;
use super::model::Bart;
use crate::error::{Error, Result};

impl Bart {
    /// Loads `dir/config.json` and `dir/model.safetensors`, the layout `save_pretrained` writes.
    pub fn from_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let config = Config::from_json_file(&dir.join("config.json"))?;
        Self::from_safetensors(&dir.join("model.safetensors"), &config, dtype, device)
    }

    /// Loads the weights in the safetensors file `path` for the model `config` describes.
    ///
    /// The file is read into memory rather than mapped: mapping needs `unsafe`, which the
    /// workspace denies.
    pub fn from_safetensors(
        path: &Path,
        config: &Config,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(checkpoint_var_builder(data, dtype, device)?, config)
    }

    /// Downloads (or finds in the hub cache) `repo_id`'s config.json and model.safetensors.
    #[cfg(feature = "hub")]
    pub fn from_hub(repo_id: &str, dtype: DType, device: &Device) -> Result<Self> {
        let api = hf_hub::api::sync::Api::new().map_err(|e| hub_error(repo_id, "", e))?;
        let repo = api.model(repo_id.to_string());
        let fetch = |file: &str| repo.get(file).map_err(|e| hub_error(repo_id, file, e));
        let config = Config::from_json_file(&fetch("config.json")?)?;
        let weights = fetch("model.safetensors")?;
        Self::from_safetensors(&weights, &config, dtype, device)
    }
}

#[cfg(feature = "hub")]
fn hub_error(repo_id: &str, file: &str, error: hf_hub::api::sync::ApiError) -> Error {
    let hint = if file.ends_with(".safetensors") {
        " (only safetensors weights are read; a repository with just pytorch_model.bin must be \
         converted first)"
    } else {
        ""
    };
    Error::Io {
        path: Path::new(repo_id).join(file),
        source: std::io::Error::other(format!("hub download failed: {error}{hint}")),
    }
}

/// A `VarBuilder` over safetensors bytes, like `VarBuilder::from_buffered_safetensors`.
pub(super) fn checkpoint_var_builder(
    data: Vec<u8>,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    let tensors = BufferedSafetensors::new(data)?;
    Ok(VarBuilder::from_backend(
        Box::new(Checkpoint(tensors)),
        dtype,
        device.clone(),
    ))
}

/// candle's buffered safetensors backend, except that a missing tensor is reported as
/// `CannotFindTensor` with its full key (candle passes on the safetensors crate's own error, which
/// [`Error`] cannot tell from any other), so the user gets [`Error::MissingTensor`].
struct Checkpoint(BufferedSafetensors);

impl Checkpoint {
    fn check(&self, name: &str) -> candle_core::Result<()> {
        if SimpleBackend::contains_tensor(&self.0, name) {
            return Ok(());
        }
        Err(candle_core::Error::CannotFindTensor {
            path: name.to_string(),
        })
    }
}

impl SimpleBackend for Checkpoint {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.check(name)?;
        SimpleBackend::get(&self.0, s, name, h, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.check(name)?;
        SimpleBackend::get_unchecked(&self.0, name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.0, name)
    }
}
