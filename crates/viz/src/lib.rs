//! Plots, images and tables for Lowrank: SVG and PNG files, and inline display in Rust notebooks.
//!
//! `viz` takes plain data (slices of `f64`, [`ndarray`] matrices, images) and knows nothing of the
//! math crate: `lowrank` computes, `viz` shows, and the notebooks' prelude crate `lab` re-exports both.
//!
//! - [`Plot`]: line and scatter plots, several named series, optional log-y axis;
//! - [`BarChart`]: one bar per label;
//! - [`Heatmap`]: a matrix or an attention map with a colour bar;
//! - [`Spectrum`]: singular values on a log scale beside the cumulative energy they keep;
//! - [`ImageGrid`]: images side by side with captions (an original beside its rank-k versions);
//! - [`Image`]: one image; [`Table`]: rows of text and numbers;
//! - [`figure`]: any plotters drawing, for what the charts above do not cover.
//!
//! Every chart renders to an SVG string (`to_svg`), PNG bytes (`to_png`) or a file whose extension
//! picks the format (`save`, written atomically). Text is drawn with DejaVu Sans compiled into the crate,
//! so PNGs come out the same on a machine with no fonts installed.
//!
//! In an evcxr notebook a cell whose value is one of these types shows it inline: evcxr calls its
//! `evcxr_display`, which prints one `EVCXR_BEGIN_CONTENT` block (SVG for charts, PNG for images,
//! HTML for tables). `display_block` returns that block as a string, for tests and other front ends.
//!
//! ```
//! let xs = [1.0, 2.0, 3.0, 4.0];
//! let plot = viz::Plot::new("energy kept")
//!     .x_label("rank")
//!     .line("photo", &xs, &[0.61, 0.78, 0.86, 0.91]);
//! assert!(plot.to_svg()?.contains("energy kept"));
//!
//! let png = plot.to_png()?;
//! let decoded = image::load_from_memory(&png).expect("viz writes valid PNGs");
//! assert_eq!((decoded.width(), decoded.height()), (640, 400));
//!
//! let block = plot.display_block()?;
//! assert!(block.starts_with("EVCXR_BEGIN_CONTENT image/svg+xml\n<svg"));
//! assert!(block.ends_with("</svg>\nEVCXR_END_CONTENT\n"));
//! # Ok::<(), viz::Error>(())
//! ```

pub mod error;

mod bar;
mod chart;
mod figure;
mod font;
mod heatmap;
mod image;
mod plot;
mod render;
mod spectrum;
mod table;

#[cfg(test)]
mod tests;

pub use bar::BarChart;
pub use error::{Error, Result};
pub use figure::{Figure, figure};
pub use heatmap::{Colormap, Heatmap};
pub use image::{Image, ImageGrid};
pub use plot::Plot;
pub use spectrum::Spectrum;
pub use table::{Cell, Row, Table};

/// The ndarray `viz` is built with, for the matrices [`Heatmap`] takes.
pub use ndarray;
/// The plotters `viz` is built with, for drawings made with [`figure`].
pub use plotters;
