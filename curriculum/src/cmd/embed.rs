//! `lowrank embed`: sentence embeddings from a BERT-family sentence encoder (all-MiniLM-L6-v2 and
//! kin: mean pooling, L2 norm), their cosine similarities, and optionally the vectors as .npy.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use models::bert::SentenceEncoder;
use models::candle::DType;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

use super::device::DeviceArg;
use crate::output::write_atomically;

#[derive(clap::Args)]
pub struct Args {
    /// A sentence-transformers directory: config.json, model.safetensors, tokenizer.json (modules.json
    /// and 1_Pooling/config.json when present).
    #[arg(long)]
    model: PathBuf,
    /// A text to embed; repeat for several.
    #[arg(long)]
    text: Vec<String>,
    /// A file with one text per line (added after --text).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Write the embeddings (texts × dimensions, float32) to this .npy file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    device: DeviceArg,
}

pub fn run(args: &Args) -> Result<()> {
    let texts = texts(args)?;
    let device = args.device.open()?;
    let encoder =
        SentenceEncoder::from_dir(&args.model, DType::F32, &device).with_context(|| {
            format!(
                "cannot load a sentence encoder from {}",
                args.model.display()
            )
        })?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embeddings = encoder
        .embed(&refs)?
        .to_device(&models::candle::Device::Cpu)?;
    let rows: Vec<Vec<f32>> = embeddings.to_vec2()?;
    println!("{} texts, {} dimensions", rows.len(), encoder.dim());
    print_similarities(&texts, &rows);
    if let Some(out) = &args.out {
        let matrix = Array2::from_shape_vec(
            (rows.len(), encoder.dim()),
            rows.into_iter().flatten().collect(),
        )?;
        write_atomically(out, |file| Ok(matrix.write_npy(file)?))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

fn texts(args: &Args) -> Result<Vec<String>> {
    let mut texts = args.text.clone();
    if let Some(path) = &args.file {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        texts.extend(
            content
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        bail!(
            "nothing to embed: give --text TEXT (repeatable) or --file FILE with one text per line"
        );
    }
    Ok(texts)
}

/// Embeddings are unit vectors, so a dot product is the cosine.
fn print_similarities(texts: &[String], rows: &[Vec<f32>]) {
    if rows.len() < 2 {
        return;
    }
    println!("cosine similarities:");
    for (i, a) in rows.iter().enumerate() {
        for (j, b) in rows.iter().enumerate().skip(i + 1) {
            let cosine: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            println!(
                "{cosine:>7.4}  {:?} ~ {:?}",
                short(&texts[i]),
                short(&texts[j])
            );
        }
    }
}

fn short(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}
