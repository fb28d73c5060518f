//! Any plotters drawing as an SVG figure, for charts the ready-made types do not cover.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, SVGBackend};

use crate::Result;
use crate::render;

/// Draws with plotters into an in-memory SVG of `size` pixels (each side within 160..=4096), the
/// shape of plotters' own `evcxr_figure`, but returning errors, panics included, as a
/// [`Result`](crate::Result) rather than panicking.
///
/// Text must use the family `"sans-serif"`, the bundled font: plotters finds no other.
/// plotters itself is re-exported as [`viz::plotters`](crate::plotters), at the version `viz` uses.
///
/// ```
/// use viz::plotters::prelude::*;
///
/// let figure = viz::figure((400, 300), |root| {
///     let mut chart = ChartBuilder::on(root)
///         .caption("y = x²", ("sans-serif", 20))
///         .x_label_area_size(30)
///         .y_label_area_size(40)
///         .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
///     chart.configure_mesh().draw()?;
///     chart.draw_series(LineSeries::new((0..=20).map(|i| f64::from(i) / 20.0).map(|x| (x, x * x)), &BLUE))?;
///     Ok(())
/// })?;
/// assert!(figure.as_svg().contains("y = x²"));
/// assert!(figure.display_block()?.starts_with("EVCXR_BEGIN_CONTENT image/svg+xml\n"));
///
/// let failed = viz::figure((400, 300), |root| {
///     ChartBuilder::on(root).caption("oops", ("no such font", 20)).build_cartesian_2d(0..1, 0..1)?;
///     Ok(())
/// });
/// assert!(failed.unwrap_err().to_string().starts_with("cannot draw figure"));
/// # Ok::<(), viz::Error>(())
/// ```
pub fn figure<F>(size: (u32, u32), draw: F) -> Result<Figure>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error>>,
{
    Ok(Figure {
        svg: render::svg_with(size, draw)?,
    })
}

/// An SVG drawing made by [`figure`].
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    svg: String,
}

impl Figure {
    /// The SVG document.
    pub fn as_svg(&self) -> &str {
        &self.svg
    }

    /// Saves the figure as SVG (the only extension accepted), atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if render::extension(path) != "svg" {
            return Err(render::unknown_extension(path, ".svg"));
        }
        render::write_atomically(path, self.svg.as_bytes())
    }

    /// The block [`evcxr_display`](Self::evcxr_display) prints, as for the charts.
    pub fn display_block(&self) -> Result<String> {
        Ok(render::block(render::CHART_MIME, &self.svg))
    }

    /// Shows the figure inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        render::print_block(self.display_block());
    }
}
