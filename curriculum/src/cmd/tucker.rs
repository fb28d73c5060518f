//! `lowrank tucker`: Tucker-decompose a tensor saved by numpy (`np.save`) and show how well a small
//! core and factors explain it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lowrank::ndarray::ArrayD;
use lowrank::tucker::{Hooi, Tucker, hooi, hosvd, tucker_parameter_count};
use ndarray_npy::{ReadNpyError, WriteNpyExt};

use crate::output::write_atomically;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Method {
    /// Higher-order SVD: one SVD per mode, no iterations.
    Hosvd,
    /// Higher-order orthogonal iteration, started from HOSVD (tensorly's `tucker`).
    Hooi,
}

#[derive(clap::Args)]
pub struct Args {
    /// The tensor, a .npy file of float64 or float32 with at least one mode.
    input: PathBuf,
    /// Rank per mode, comma separated (as many as the tensor has modes), e.g. 10,10,3.
    #[arg(long, value_delimiter = ',', required = true)]
    ranks: Vec<usize>,
    #[arg(long, value_enum, default_value_t = Method::Hooi)]
    method: Method,
    /// HOOI stops when the relative error changes by less than this between iterations.
    #[arg(long, default_value_t = Hooi::default().tolerance)]
    tolerance: f64,
    /// HOOI's iteration limit.
    #[arg(long, default_value_t = Hooi::default().max_iterations)]
    max_iterations: usize,
    /// Write the reconstruction (core multiplied by the factors) to this .npy file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let x = read_tensor(&args.input)?;
    println!(
        "tensor {}: shape {:?}, {} values",
        args.input.display(),
        x.shape(),
        x.len()
    );
    let tucker = match args.method {
        Method::Hosvd => hosvd(x.view(), &args.ranks)?,
        Method::Hooi => {
            let options = Hooi {
                max_iterations: args.max_iterations,
                tolerance: args.tolerance,
            };
            let (tucker, trace) = hooi(x.view(), &args.ranks, &options)?;
            println!(
                "HOSVD start: relative error {:.6}",
                trace.initial_relative_error
            );
            for (i, error) in trace.relative_errors.iter().enumerate() {
                println!(
                    "iteration {:>3}: relative error {error:.6}, fit {:.6}",
                    i + 1,
                    1.0 - error
                );
            }
            let verdict = if trace.converged {
                "converged"
            } else {
                "stopped at the iteration limit"
            };
            println!(
                "HOOI {verdict} after {} iterations (tolerance {:e})",
                trace.iterations(),
                args.tolerance
            );
            tucker
        }
    };
    report(&x, &tucker, &args.ranks)?;
    if let Some(out) = &args.out {
        save_reconstruction(&tucker, out)?;
    }
    Ok(())
}

fn report(x: &ArrayD<f64>, tucker: &Tucker<f64>, ranks: &[usize]) -> Result<()> {
    let error = tucker.relative_error(x.view())?;
    let parameters = tucker_parameter_count(x.shape(), ranks)?;
    println!(
        "ranks {ranks:?}: core {:?} + factors {:?}",
        tucker.core.shape(),
        tucker.factors.iter().map(|f| f.dim()).collect::<Vec<_>>()
    );
    println!(
        "relative error ‖X − X̂‖/‖X‖ = {error:.6}, fit = {:.6}",
        1.0 - error
    );
    println!(
        "stored values: {parameters} instead of {} (compression {:.2}x)",
        x.len(),
        x.len() as f64 / parameters as f64
    );
    Ok(())
}

fn read_tensor(path: &Path) -> Result<ArrayD<f64>> {
    let context = || format!("cannot read the tensor {}", path.display());
    match ndarray_npy::read_npy::<_, ArrayD<f64>>(path) {
        Ok(x) => Ok(x),
        Err(ReadNpyError::WrongDescriptor(_)) => {
            let x: ArrayD<f32> = ndarray_npy::read_npy(path)
                .with_context(|| format!("{}: expected float64 or float32 data", context()))?;
            Ok(x.mapv(f64::from))
        }
        Err(error) => Err(error).with_context(context),
    }
}

fn save_reconstruction(tucker: &Tucker<f64>, out: &Path) -> Result<()> {
    let reconstruction = tucker.reconstruct()?;
    write_atomically(out, |writer| Ok(reconstruction.write_npy(writer)?))?;
    println!("reconstruction written to {}", out.display());
    Ok(())
}
