//! `lowrank svd-image IN (--rank K | --energy E) --out OUT`: compress an image channel by channel with a
//! truncated SVD, print what it kept and cost (ranks, energy, values stored, PSNR) and write the
//! reconstruction.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lowrank::image::{self, CompressedImage, ImageChannels, ImageFormat, Keep};

/// Photographs `cargo xtask venv` copies out of scikit-image into `<cache>/samples/NAME.png`.
const PHOTOS: [&str; 2] = ["astronaut", "coffee"];

/// Compress an image channel by channel with a truncated SVD.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("keep").required(true).args(["rank", "energy"])))]
pub struct Args {
    /// The image: a PNG or JPEG path; `sample:NAME` for a drawn sample (gradient, checkerboard,
    /// stripes, plasma, rings); `sample:astronaut` or `sample:coffee` for the photographs that
    /// `cargo xtask venv` caches.
    #[arg(value_name = "IN")]
    input: String,
    /// Singular triplets to keep in every channel.
    #[arg(long, value_parser = parse_rank)]
    rank: Option<usize>,
    /// Keep, per channel, the smallest rank holding this fraction of Σσ², in (0, 1].
    #[arg(long, value_parser = parse_energy)]
    energy: Option<f64>,
    /// Where to write the reconstruction (.png, .jpg or .jpeg).
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
    /// Size of a drawn sample: `N` for N×N or `WIDTHxHEIGHT`.
    #[arg(long, default_value = "512", value_parser = parse_size)]
    size: (usize, usize),
}

pub fn run(args: &Args) -> Result<()> {
    image::output_format(&args.out).context("invalid --out")?;
    let keep = match (args.rank, args.energy) {
        (Some(rank), None) => Keep::Rank(rank),
        (None, Some(energy)) => Keep::Energy(energy),
        _ => bail!("give exactly one of --rank and --energy"),
    };
    let original = read_input(&args.input, args.size)?;
    let names = channel_names(original.n_channels());
    let compressed = compress_showing_progress(&original, keep, &names)
        .with_context(|| format!("cannot compress {}", args.input))?;
    let psnr = image::psnr(&original, &compressed.image).context("cannot measure the PSNR")?;
    compressed
        .image
        .save(&args.out)
        .context("cannot save the compressed image")?;
    print(&report(args, &original, &compressed, psnr, &names)?)
}

fn read_input(input: &str, (width, height): (usize, usize)) -> Result<ImageChannels> {
    let Some(name) = input.strip_prefix("sample:") else {
        return image::load(Path::new(input)).context("cannot load the input image");
    };
    if PHOTOS.contains(&name) {
        let path = cache_dir().join("samples").join(format!("{name}.png"));
        if !path.exists() {
            bail!(
                "the photograph {name:?} is not in the cache ({}): run `cargo xtask venv` to copy it there",
                path.display()
            );
        }
        return image::load(&path).with_context(|| format!("cannot load the photograph {name:?}"));
    }
    if !image::SAMPLES.contains(&name) {
        bail!(
            "unknown sample {name:?}: drawn samples are {}; photographs are {}",
            image::SAMPLES.join(", "),
            PHOTOS.join(", ")
        );
    }
    image::sample(name, width, height).with_context(|| format!("cannot draw the sample {name:?}"))
}

/// Runs the SVDs with a spinner on stderr naming the channel in progress (hidden when stderr is not
/// a terminal, so pipes and logs stay clean).
fn compress_showing_progress(
    original: &ImageChannels,
    keep: Keep,
    names: &[&str],
) -> Result<CompressedImage> {
    let style =
        ProgressStyle::with_template("{spinner} SVD of channel {msg} [{pos}/{len}] {elapsed}")
            .context("bad progress template")?;
    let bar = ProgressBar::new(names.len() as u64).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    let result = image::compress_with_progress(original, keep, |channel| {
        bar.set_position(channel as u64);
        bar.set_message(format!(
            "{} ({}×{})",
            names.get(channel).copied().unwrap_or("?"),
            original.height(),
            original.width()
        ));
    });
    bar.finish_and_clear();
    Ok(result?)
}

fn report(
    args: &Args,
    original: &ImageChannels,
    compressed: &CompressedImage,
    psnr: f64,
    names: &[&str],
) -> Result<String> {
    let mut text = String::new();
    let (height, width, n_channels) = (original.height(), original.width(), original.n_channels());
    writeln!(
        text,
        "input     {}: {width}×{height} pixels, {n_channels} channel{} ({})",
        args.input,
        if n_channels == 1 { "" } else { "s" },
        names.join("")
    )?;
    writeln!(text, "channel   rank  energy kept")?;
    for ((name, rank), energy) in names.iter().zip(&compressed.ranks).zip(&compressed.energy) {
        writeln!(text, "{name:<8} {rank:>5}  {:>10.4}%", 100.0 * energy)?;
    }
    writeln!(
        text,
        "stored    {} values of {} ({} per channel and rank), storage ratio {:.2}×",
        compressed.values_stored,
        compressed.original_values,
        height + width + 1,
        compressed.storage_ratio
    )?;
    if compressed.storage_ratio < 1.0 {
        writeln!(
            text,
            "          (the factors hold more numbers than the image: lower the rank to save space)"
        )?;
    }
    if psnr.is_finite() {
        writeln!(text, "PSNR      {psnr:.2} dB")?;
    } else {
        writeln!(
            text,
            "PSNR      infinite: the 8-bit image is reproduced exactly"
        )?;
    }
    if matches!(image::output_format(&args.out), Ok(ImageFormat::Jpeg)) {
        writeln!(
            text,
            "          (of the reconstruction: JPEG encoding loses a little more)"
        )?;
    }
    writeln!(text, "wrote     {}", args.out.display())?;
    Ok(text)
}

/// Prints the report once the work is done, so a reader that closes the pipe early (`| head -1`)
/// neither stops the save nor turns a success into an error.
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot print the report"),
    }
}

fn channel_names(n_channels: usize) -> Vec<&'static str> {
    if n_channels == 1 {
        vec!["grey"]
    } else {
        vec!["R", "G", "B"]
    }
}

/// Where Lowrank caches tools and samples: `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else
/// `~/.cache/lowrank` (the same rule as xtask and the parity tests, which share no crate with this one).
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("lowrank")
}

fn parse_rank(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("the rank must be at least 1".into()),
        Ok(rank) => Ok(rank),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

fn parse_energy(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(energy) if energy > 0.0 && energy <= 1.0 => Ok(energy),
        Ok(_) => Err("the fraction of energy to keep must lie in (0, 1], e.g. 0.99".into()),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

fn parse_size(text: &str) -> Result<(usize, usize), String> {
    let parse = |part: &str| match part.trim().parse::<usize>() {
        Ok(0) => Err("a side must be at least 1 pixel".to_string()),
        Ok(side) => Ok(side),
        Err(e) => Err(format!("{part:?} is not a whole number: {e}")),
    };
    match text.split_once(['x', '×']) {
        Some((width, height)) => Ok((parse(width)?, parse(height)?)),
        None => parse(text).map(|side| (side, side)),
    }
}
