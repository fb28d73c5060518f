//! The singular-value spectrum: how fast the values fall, and how much energy the first k keep.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    Chart, DrawResult, LABEL_SIZE, Rasters, TICK_SIZE, TITLE_SIZE, Ticks, log_tick_label, min_max,
    series_colour, styled_mesh, text, tick_label,
};
use crate::error::check_finite;
use crate::render::chart_outputs;
use crate::{Error, Result};

/// Two panels for one list of singular values: left, σ_i on a log scale against i (1-based, as in
/// the math: σ_1 is `s[0]`); right, the energy a rank-k truncation keeps, `(s[0]² + … + s[k-1]²) / (s[0]² + … + s[n-1]²)`, in
/// percent. By Eckart–Young the energy lost is the squared relative Frobenius error of the best
/// rank-k approximation, so the right panel answers "which rank do I need".
///
/// Zeros (a rank-deficient matrix) cannot sit on a log axis: the left panel leaves them out, the
/// right one counts them.
///
/// ```
/// // A rank-3 matrix: rank 2 keeps (9 + 4) / (9 + 4 + 1) of the energy.
/// let spectrum = viz::Spectrum::new("a small spectrum", &[3.0, 2.0, 1.0, 0.0]).mark_rank(2);
/// let svg = spectrum.to_svg()?;
/// assert!(svg.contains("a small spectrum") && svg.contains("energy kept"));
/// assert!(svg.contains("rank 2: 92.9%"));
///
/// let error = viz::Spectrum::new("bad", &[3.0, -1.0]).to_svg().unwrap_err();
/// assert!(error.to_string().contains("singular values are never negative"));
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spectrum {
    title: String,
    values: Vec<f64>,
    marked_rank: Option<usize>,
    size: (u32, u32),
}

impl Spectrum {
    /// The spectrum of `singular_values` (in any order; conventionally descending), 800×360 pixels.
    pub fn new(title: impl Into<String>, singular_values: &[f64]) -> Self {
        Self {
            title: title.into(),
            values: singular_values.to_vec(),
            marked_rank: None,
            size: (800, 360),
        }
    }

    /// Marks rank `k` (1-based) on both panels with a dashed line, and writes the energy it keeps.
    pub fn mark_rank(mut self, k: usize) -> Self {
        self.marked_rank = Some(k);
        self
    }

    /// Sets the picture size in pixels (each side within 160..=4096).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// The fraction of energy the first `k` values keep; `None` for `k` past the end or values that
    /// sum to zero. (`lowrank::spectrum` is the library's; `viz` depends on no math crate.)
    fn energy_kept(&self, k: usize) -> Option<f64> {
        // Squares of values past 1e154 overflow; dividing by the largest first keeps them finite.
        let largest = self.values.iter().fold(0.0, |m: f64, s| m.max(s.abs()));
        let energy = |values: &[f64]| values.iter().map(|s| (s / largest).powi(2)).sum::<f64>();
        let total = energy(&self.values);
        if k > self.values.len() || largest == 0.0 || total <= 0.0 {
            return None;
        }
        Some(energy(&self.values[..k]) / total)
    }

    fn draw_values<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
        let positive: Vec<(f64, f64)> = (1..)
            .zip(self.values.iter().copied())
            .filter(|(_, s)| *s > 0.0)
            .map(|(i, s)| (f64::from(i), s.log10()))
            .collect();
        let (lo, hi) = min_max(positive.iter().map(|(_, log_s)| 10f64.powf(*log_s)));
        let n = self.values.len() as f64;
        let mut chart = ChartBuilder::on(area)
            .caption("singular values", text(LABEL_SIZE))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..n + 0.5, Ticks::log10(lo, hi))?;
        styled_mesh(&mut chart, "i", "σ_i")
            .x_label_formatter(&tick_label)
            .y_label_formatter(&log_tick_label)
            .draw()?;
        let colour = series_colour(0);
        chart.draw_series(LineSeries::new(
            positive.iter().copied(),
            colour.stroke_width(2),
        ))?;
        if positive.len() <= 100 {
            chart.draw_series(positive.iter().map(|p| Circle::new(*p, 2, colour.filled())))?;
        }
        if let Some(k) = self.marked_rank {
            let (y0, y1) = (chart.y_range().start, chart.y_range().end);
            chart.draw_series(std::iter::once(marker_line(k as f64, y0, y1)))?;
        }
        Ok(())
    }

    fn draw_energy<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<(), DB> {
        let n = self.values.len();
        let points: Vec<(f64, f64)> = (0..=n)
            .map(|k| (k as f64, 100.0 * self.energy_kept(k).unwrap_or(0.0)))
            .collect();
        let mut chart = ChartBuilder::on(area)
            .caption("energy kept", text(LABEL_SIZE))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..102.0)?;
        styled_mesh(&mut chart, "rank k", "percent")
            .x_label_formatter(&tick_label)
            .y_label_formatter(&tick_label)
            .draw()?;
        chart.draw_series(LineSeries::new(points, series_colour(1).stroke_width(2)))?;
        if let Some(k) = self.marked_rank {
            let kept = 100.0 * self.energy_kept(k).unwrap_or(0.0);
            chart.draw_series(std::iter::once(marker_line(k as f64, 0.0, 102.0)))?;
            // The note sits below the curve, on the side of the line with more room.
            let anchor = if (k as f64) < n as f64 / 2.0 {
                Pos::new(HPos::Left, VPos::Top)
            } else {
                Pos::new(HPos::Right, VPos::Top)
            };
            let shift = if (k as f64) < n as f64 / 2.0 {
                0.02
            } else {
                -0.02
            } * n as f64;
            chart.draw_series(std::iter::once(Text::new(
                format!("rank {k}: {kept:.1}%"),
                (k as f64 + shift, (kept - 8.0).max(4.0)),
                text(TICK_SIZE).pos(anchor),
            )))?;
        }
        Ok(())
    }
}

/// A dashed vertical line at `x`.
fn marker_line(x: f64, y0: f64, y1: f64) -> DashedPathElement<std::vec::IntoIter<(f64, f64)>, u32> {
    DashedPathElement::new(vec![(x, y0), (x, y1)], 6, 4, BLACK.mix(0.6).stroke_width(1))
}

impl Chart for Spectrum {
    fn what(&self) -> String {
        format!("spectrum {:?}", self.title)
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn validate(&self) -> Result<()> {
        check_finite(&format!("{}, singular values", self.what()), &self.values)?;
        if let Some(index) = self.values.iter().position(|s| *s < 0.0) {
            return Err(Error::OutOfRange {
                what: format!("{}, singular values", self.what()),
                index,
                value: self.values[index],
                reason: "singular values are never negative",
            });
        }
        if self.values.iter().all(|s| *s == 0.0) {
            return Err(Error::InvalidArgument {
                name: "singular values",
                value: "all zero".into(),
                reason: "the spectrum of a zero matrix has no energy to plot".into(),
            });
        }
        if let Some(k) = self.marked_rank
            && (k == 0 || k > self.values.len())
        {
            return Err(Error::InvalidArgument {
                name: "mark_rank",
                value: k.to_string(),
                reason: format!("choose a rank in 1..={}", self.values.len()),
            });
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _: &mut Rasters,
    ) -> DrawResult<(), DB> {
        let area = root.titled(&self.title, text(TITLE_SIZE))?;
        let panels = area.split_evenly((1, 2));
        if let [left, right] = panels.as_slice() {
            self.draw_values(left)?;
            self.draw_energy(right)?;
        }
        Ok(())
    }
}

chart_outputs!(Spectrum);
