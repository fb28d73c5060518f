//! Turning a chart into SVG text, PNG bytes, a file, or an evcxr display block.
//!
//! Every chart type gets the same five methods from [`chart_outputs!`]: `to_svg`, `to_png`, `save`,
//! `display_block` and `evcxr_display`. They are inherent methods rather than a public trait so a
//! notebook calls them with no `use`, and evcxr finds `evcxr_display` by name.

use std::io::{Cursor, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ::image::imageops::{self, FilterType};
use ::image::{DynamicImage, ImageFormat, RgbImage};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use plotters::backend::RGBPixel;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{Chart, DrawResult, Raster, Rasters, check_size};
use crate::{Error, Result, font};

/// The MIME type charts use in notebooks.
///
/// SVG rather than PNG: text and lines stay sharp at any zoom and on high-DPI screens, a line chart is
/// a few kilobytes instead of tens, and the labels stay searchable text. Heatmaps and image grids embed
/// their pixels as PNG inside the SVG, so they lose nothing either.
pub(crate) const CHART_MIME: &str = "image/svg+xml";

/// Draws `chart` into an SVG document.
pub(crate) fn svg(chart: &impl Chart) -> Result<String> {
    prepare(chart)?;
    let mut svg = String::new();
    let mut rasters = Rasters {
        for_svg: true,
        collected: Vec::new(),
    };
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        draw_guarded(chart, &root, &mut rasters)?;
    }
    Ok(embed_rasters(svg, &rasters.collected))
}

/// Draws `chart` into a PNG file's bytes.
pub(crate) fn png(chart: &impl Chart) -> Result<Vec<u8>> {
    prepare(chart)?;
    let (width, height) = chart.size();
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    let mut rasters = Rasters {
        for_svg: false,
        collected: Vec::new(),
    };
    {
        let backend =
            BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut pixels, (width, height))
                .map_err(|e| plot_error(&chart.what(), e))?;
        draw_guarded(chart, &backend.into_drawing_area(), &mut rasters)?;
    }
    let image = RgbImage::from_raw(width, height, pixels).ok_or_else(|| Error::Plot {
        what: chart.what(),
        message: "the pixel buffer does not match the size".into(),
    })?;
    encode_png(&DynamicImage::ImageRgb8(image))
}

/// Saves `chart` as SVG or PNG, by the extension of `path`.
pub(crate) fn save(chart: &impl Chart, path: &Path) -> Result<()> {
    let bytes = match extension(path).as_str() {
        "svg" => svg(chart)?.into_bytes(),
        "png" => png(chart)?,
        _ => return Err(unknown_extension(path, ".svg, .png")),
    };
    write_atomically(path, &bytes)
}

/// The lowercase extension of `path`, or an empty string.
pub(crate) fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

pub(crate) fn unknown_extension(path: &Path, known: &'static str) -> Error {
    Error::UnknownExtension {
        path: path.to_path_buf(),
        extension: extension(path),
        known,
    }
}

fn prepare(chart: &impl Chart) -> Result<()> {
    check_size(chart.size())?;
    chart.validate()?;
    font::register()
}

/// Fills the background, draws, and presents; plotters errors and panics become [`Error::Plot`].
fn draw_guarded<DB: DrawingBackend>(
    chart: &impl Chart,
    root: &DrawingArea<DB, Shift>,
    rasters: &mut Rasters,
) -> Result<()> {
    guarded(&chart.what(), || -> DrawResult<(), DB> {
        root.fill(&WHITE)?;
        chart.draw(root, rasters)?;
        root.present()
    })
}

/// Runs a drawing closure on an SVG root as charts are drawn, for [`crate::figure`].
pub(crate) fn svg_with<F>(size: (u32, u32), draw: F) -> Result<String>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error>>,
{
    check_size(size)?;
    font::register()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        guarded("figure", || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })?;
    }
    Ok(svg)
}

/// Runs `draw`, turning its error or its panic into [`Error::Plot`].
///
/// Charts validate their data first, so a panic here is a plotters bug or a corner no check
/// foresaw; catching it keeps a notebook's kernel alive and reports it like any other error. (The
/// panic message still reaches stderr through the panic hook.)
fn guarded<E: std::fmt::Display>(what: &str, draw: impl FnOnce() -> Result<(), E>) -> Result<()> {
    match catch_unwind(AssertUnwindSafe(draw)) {
        Ok(result) => result.map_err(|e| plot_error(what, e)),
        Err(panic) => Err(plot_error(
            what,
            format!("plotters panicked: {}", panic_message(panic.as_ref())),
        )),
    }
}

fn plot_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Plot {
        what: what.to_string(),
        message: error.to_string(),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "no message".to_string()
    }
}

/// Inserts each raster as an `<image>` right after the white background, under everything plotters
/// drew, as a bitmap has it.
fn embed_rasters(mut svg: String, rasters: &[Raster]) -> String {
    if rasters.is_empty() {
        return svg;
    }
    let mut images = String::new();
    for raster in rasters {
        let image = embedded_image(raster);
        // Encoding an in-memory RGB image cannot fail short of running out of memory; skip it then.
        let Ok(png) = encode_png(&DynamicImage::ImageRgb8(image)) else {
            continue;
        };
        let rendering = if raster.pixelated {
            r#" image-rendering="optimizeSpeed" style="image-rendering:pixelated""#
        } else {
            ""
        };
        images.push_str(&format!(
            r#"<image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none"{rendering} href="data:image/png;base64,{}"/>"#,
            raster.left,
            raster.top,
            raster.width,
            raster.height,
            BASE64.encode(png),
        ));
        images.push('\n');
    }
    // The background is the first element: `<rect .../>` and a newline after the `<svg>` tag.
    let after_background = svg
        .find("<rect")
        .and_then(|start| svg[start..].find("/>\n").map(|end| start + end + 3));
    match after_background {
        Some(at) => svg.insert_str(at, &images),
        None => svg.push_str(&images),
    }
    svg
}

/// The pixels an SVG embeds for a raster.
///
/// Photographs go in at up to twice the shown size: sharp on high-DPI screens without megabytes.
/// Matrices go in enlarged by a whole factor, each cell a block of identical pixels, so their edges
/// stay sharp even where a viewer ignores `image-rendering` and smooths (librsvg, some previews).
fn embedded_image(raster: &Raster) -> RgbImage {
    let (width, height) = raster.image.dimensions();
    if raster.pixelated {
        let factor = u32::min(raster.width / width.max(1), raster.height / height.max(1)).max(1);
        if factor == 1 {
            return raster.image.clone();
        }
        return imageops::resize(
            &raster.image,
            width * factor,
            height * factor,
            FilterType::Nearest,
        );
    }
    let scale = f64::min(
        2.0 * f64::from(raster.width) / f64::from(width.max(1)),
        2.0 * f64::from(raster.height) / f64::from(height.max(1)),
    );
    if scale >= 1.0 {
        return raster.image.clone();
    }
    let scaled = |side: u32| ((f64::from(side) * scale).round() as u32).max(1);
    imageops::resize(
        &raster.image,
        scaled(width),
        scaled(height),
        FilterType::Triangle,
    )
}

/// PNG bytes of an image.
pub(crate) fn encode_png(image: &DynamicImage) -> Result<Vec<u8>> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|source| Error::Image {
            op: "encode",
            source,
        })?;
    Ok(bytes.into_inner())
}

/// Writes `bytes` to a temporary file in `path`'s folder, then renames it over `path`: an interrupted
/// save leaves any previous file whole.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".viz-");
    // tempfile creates 0600 files; ask for 0666 so the umask decides, as for any new file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder.tempfile_in(dir).map_err(io_error)?;
    temp.write_all(bytes).map_err(io_error)?;
    temp.flush().map_err(io_error)?;
    temp.persist(path).map_err(|e| io_error(e.error))?;
    Ok(())
}

/// One evcxr display block: `EVCXR_BEGIN_CONTENT <mime>`, the data (its trailing newlines dropped),
/// `EVCXR_END_CONTENT`.
pub(crate) fn block(mime: &str, data: &str) -> String {
    let data = data.trim_end_matches('\n');
    format!("EVCXR_BEGIN_CONTENT {mime}\n{data}\nEVCXR_END_CONTENT\n")
}

/// An image/png block, the bytes in base64 as evcxr expects for binary types.
pub(crate) fn png_block(png: &[u8]) -> String {
    block("image/png", &BASE64.encode(png))
}

/// The block to show for a display attempt: the block itself, or the error as a text/plain block.
pub(crate) fn block_or_error(block_result: Result<String>) -> String {
    block_result.unwrap_or_else(|e| block("text/plain", &format!("viz: error: {e}")))
}

/// Prints a display block with one write to the locked stdout, so no other output interleaves; an
/// error is shown in the cell as plain text instead.
pub(crate) fn print_block(block_result: Result<String>) {
    let text = block_or_error(block_result);
    let mut stdout = std::io::stdout().lock();
    // A closed stdout leaves nowhere to report to; the notebook simply shows nothing.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// The `to_svg`, `to_png`, `save`, `display_block` and `evcxr_display` methods of a chart type.
macro_rules! chart_outputs {
    ($chart:ty) => {
        impl $chart {
            /// Draws the chart as an SVG document.
            pub fn to_svg(&self) -> $crate::Result<String> {
                $crate::render::svg(self)
            }

            /// Draws the chart as the bytes of a PNG file, text in the bundled DejaVu Sans.
            pub fn to_png(&self) -> $crate::Result<Vec<u8>> {
                $crate::render::png(self)
            }

            /// Saves the chart as SVG or PNG, by the extension of `path` (`.svg`, `.png`).
            ///
            /// The file is written to a temporary file in the same folder and renamed into place, so
            /// an interrupted save leaves any previous file whole; an unknown extension is an error
            /// before anything is drawn or written.
            pub fn save(&self, path: impl AsRef<std::path::Path>) -> $crate::Result<()> {
                $crate::render::save(self, path.as_ref())
            }

            /// The block [`evcxr_display`](Self::evcxr_display) prints: the chart as SVG between
            /// `EVCXR_BEGIN_CONTENT image/svg+xml` and `EVCXR_END_CONTENT`.
            pub fn display_block(&self) -> $crate::Result<String> {
                Ok($crate::render::block(
                    $crate::render::CHART_MIME,
                    &self.to_svg()?,
                ))
            }

            /// Shows the chart inline in an evcxr notebook (evcxr calls this for a cell's value).
            pub fn evcxr_display(&self) {
                $crate::render::print_block(self.display_block());
            }
        }
    };
}

pub(crate) use chart_outputs;
