//! `lowrank inspect`: the singular-value spectrum of each linear layer of a model folder, its
//! effective rank and the rank that keeps 90% of its energy, beside a random Gaussian matrix of
//! the same shape: trained weights concentrate their energy where random ones spread it evenly,
//! which is what makes low-rank compression work (or not).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use compress::plan::glob_match;
use models::bart::Bart;
use models::bert::SentenceEncoder;
use models::candle::{DType, Device, Tensor};
use models::{Linear, Linears};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

#[derive(clap::Args)]
pub struct Args {
    /// A model folder (config.json with `model_type` "bart" or "bert", model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Layers to inspect, by checkpoint name with `*` wildcards [default: every linear layer].
    #[arg(long = "layers")]
    patterns: Vec<String>,
    /// Save a chart of the layers' mean normalized spectrum (σᵢ/σ₁ against i/n) beside random
    /// matrices', as .svg or .png.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// One layer's spectrum and what it says.
struct LayerSpectrum {
    name: String,
    shape: (usize, usize),
    singular_values: Array1<f64>,
    effective_rank: f64,
    rank_90: usize,
    random_values: Array1<f64>,
    random_effective_rank: f64,
}

pub fn run(args: &Args) -> Result<()> {
    let layers = load_layers(args)?;
    if layers.is_empty() {
        bail!(
            "no linear layer of {} matches {:?}",
            args.model.display(),
            args.patterns
        );
    }
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>13}",
        "layer", "out×in", "eff. rank", "90% at", "random eff."
    );
    let mut spectra = Vec::with_capacity(layers.len());
    let mut random_spectra = std::collections::HashMap::new();
    for (name, weight) in &layers {
        let spectrum = inspect(name, weight, &mut random_spectra)?;
        println!(
            "{:<44} {:>9} {:>9.1} {:>8} {:>13.1}",
            spectrum.name,
            format!("{}×{}", spectrum.shape.0, spectrum.shape.1),
            spectrum.effective_rank,
            spectrum.rank_90,
            spectrum.random_effective_rank
        );
        spectra.push(spectrum);
    }
    let mean =
        |f: fn(&LayerSpectrum) -> f64| spectra.iter().map(f).sum::<f64>() / spectra.len() as f64;
    println!(
        "mean effective rank {:.1} (random matrices of the same shapes: {:.1})",
        mean(|s| s.effective_rank),
        mean(|s| s.random_effective_rank)
    );
    if let Some(path) = &args.plot {
        plot(&spectra)
            .save(path)
            .with_context(|| format!("cannot save the chart {}", path.display()))?;
        println!("spectra plotted to {}", path.display());
    }
    Ok(())
}

/// The selected layers' (out, in) weights, in model order.
fn load_layers(args: &Args) -> Result<Vec<(String, Tensor)>> {
    let config_path = args.model.join("config.json");
    let text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "cannot read {} (is --model a model folder?)",
            config_path.display()
        )
    })?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", config_path.display()))?;
    let device = Device::Cpu;
    let selected = |all: Vec<(String, &Linear)>| -> Result<Vec<(String, Tensor)>> {
        all.into_iter()
            .filter(|(name, _)| {
                args.patterns.is_empty() || args.patterns.iter().any(|p| glob_match(p, name))
            })
            .map(|(name, layer)| Ok((name, layer.effective_weight()?)))
            .collect()
    };
    match config["model_type"].as_str() {
        Some("bart") => selected(Bart::from_dir(&args.model, DType::F32, &device)?.linears()),
        Some("bert") => {
            selected(SentenceEncoder::from_dir(&args.model, DType::F32, &device)?.linears())
        }
        other => bail!(
            "{}: model_type {other:?} is not supported; lowrank inspect takes \"bart\" or \"bert\"",
            config_path.display()
        ),
    }
}

/// `random` caches one Gaussian matrix's spectrum per shape (seeded by the shape).
fn inspect(
    name: &str,
    weight: &Tensor,
    random: &mut std::collections::HashMap<(usize, usize), Array1<f64>>,
) -> Result<LayerSpectrum> {
    let matrix = to_array(weight)?;
    let singular_values = lowrank::svd::svd(matrix.view())?.s;
    let shape = matrix.dim();
    let random_values = match random.get(&shape) {
        Some(values) => values.clone(),
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64((shape.0 * 100_003 + shape.1) as u64);
            let gaussian = Array2::from_shape_fn(shape, |_| StandardNormal.sample(&mut rng));
            let values = lowrank::svd::svd(gaussian.view())?.s;
            random.insert(shape, values.clone());
            values
        }
    };
    Ok(LayerSpectrum {
        name: name.to_string(),
        shape,
        effective_rank: lowrank::spectrum::effective_rank(singular_values.view()),
        rank_90: lowrank::spectrum::rank_for_energy(singular_values.view(), 0.9)?,
        random_effective_rank: lowrank::spectrum::effective_rank(random_values.view()),
        random_values,
        singular_values,
    })
}

fn to_array(tensor: &Tensor) -> Result<Array2<f64>> {
    let (rows, cols) = tensor.dims2()?;
    let values = tensor
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    Ok(Array2::from_shape_vec((rows, cols), values)?)
}

/// Points of the normalized-spectrum chart.
const GRID: usize = 100;

/// σ(i)/σ(1) at `GRID` fractions i/n of a spectrum, so spectra of different sizes average.
fn normalized(s: &Array1<f64>) -> Vec<f64> {
    let first = s.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
    (0..GRID)
        .map(|g| {
            let i = (g * s.len()) / GRID;
            (s.get(i).copied().unwrap_or(0.0) / first).max(1e-12)
        })
        .collect()
}

/// The layers' mean normalized spectrum beside the random matrices' (one line each, however many
/// layers: a legend of dozens of layers reads as nothing).
fn plot(spectra: &[LayerSpectrum]) -> viz::Plot {
    let mean = |spectra: Vec<Vec<f64>>| -> Vec<f64> {
        (0..GRID)
            .map(|g| spectra.iter().map(|s| s[g]).sum::<f64>() / spectra.len().max(1) as f64)
            .collect()
    };
    let trained = mean(
        spectra
            .iter()
            .map(|s| normalized(&s.singular_values))
            .collect(),
    );
    let random = mean(
        spectra
            .iter()
            .map(|s| normalized(&s.random_values))
            .collect(),
    );
    let xs: Vec<f64> = (0..GRID).map(|g| g as f64 / GRID as f64).collect();
    viz::Plot::new(format!(
        "Normalized singular values, mean of {} layers",
        spectra.len()
    ))
    .x_label("index / number of singular values")
    .y_label("σ(i) / σ(1)")
    .log_y()
    .line("the model's layers", &xs, &trained)
    .line("random Gaussian, same shapes", &xs, &random)
}
