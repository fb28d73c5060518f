//! Bar charts: one labelled bar per value, from a zero baseline.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    Chart, DEFAULT_SIZE, DrawResult, Rasters, TICK_SIZE, TITLE_SIZE, Ticks, min_max, series_colour,
    styled_mesh, text, tick_label,
};
use crate::error::check_finite;
use crate::render::chart_outputs;
use crate::{Error, Result};

/// Above this many bars the values are no longer written over them, and category labels thin out.
const MAX_ANNOTATED_BARS: usize = 24;

/// A bar chart: one bar per label, drawn up (or down, for negative values) from zero, its value
/// written above it.
///
/// ```
/// let chart = viz::BarChart::new("parameters per layer")
///     .y_label("millions")
///     .bar("dense", 2.36)
///     .bars(&["rank 64", "rank 16"], &[0.2, 0.05]);
/// let svg = chart.to_svg()?;
/// assert!(svg.contains("parameters per layer") && svg.contains("rank 64") && svg.contains("2.36"));
///
/// let error = viz::BarChart::new("oops").bars(&["a", "b"], &[1.0]).to_svg().unwrap_err();
/// assert_eq!(error.to_string(), r#"bar chart "oops" has 2 labels but 1 values"#);
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BarChart {
    title: String,
    x_label: String,
    y_label: String,
    labels: Vec<String>,
    values: Vec<f64>,
    size: (u32, u32),
}

impl BarChart {
    /// An empty bar chart with a title, 640×400 pixels.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            labels: Vec::new(),
            values: Vec::new(),
            size: DEFAULT_SIZE,
        }
    }

    /// Names the x axis (the categories).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Names the y axis (the values).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Adds one bar.
    pub fn bar(mut self, label: impl Into<String>, value: f64) -> Self {
        self.labels.push(label.into());
        self.values.push(value);
        self
    }

    /// Adds one bar per label, in order; `labels` and `values` must be equally long.
    pub fn bars<S: AsRef<str>>(mut self, labels: &[S], values: &[f64]) -> Self {
        self.labels
            .extend(labels.iter().map(|label| label.as_ref().to_string()));
        self.values.extend_from_slice(values);
        self
    }

    /// Sets the picture size in pixels (each side within 160..=4096).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
}

impl Chart for BarChart {
    fn what(&self) -> String {
        format!("bar chart {:?}", self.title)
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn validate(&self) -> Result<()> {
        if self.labels.len() != self.values.len() {
            return Err(Error::LengthMismatch {
                what: self.what(),
                left_name: "labels",
                left: self.labels.len(),
                right_name: "values",
                right: self.values.len(),
            });
        }
        if self.values.is_empty() {
            return Err(Error::Empty { what: self.what() });
        }
        check_finite(&format!("{}, values", self.what()), &self.values)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _: &mut Rasters,
    ) -> DrawResult<(), DB> {
        let n_bars = self.values.len();
        let (lo, hi) = min_max(self.values.iter().copied());
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        // Room above (and below) for the value labels; the baseline stays on the axis when all
        // values have one sign.
        let pad = if hi > lo { (hi - lo) * 0.08 } else { 1.0 };
        let y_range =
            (if lo < 0.0 { lo - pad } else { 0.0 })..(if hi > 0.0 { hi + pad } else { 0.0 });
        let y_range = if y_range.end > y_range.start {
            y_range
        } else {
            -1.0..1.0
        };
        let label_step = n_bars.div_ceil(MAX_ANNOTATED_BARS).max(1);
        let centres = (0..n_bars).step_by(label_step).map(|i| i as f64).collect();
        let x_axis = Ticks::new(-0.5..n_bars as f64 - 0.5, centres);

        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, text(TITLE_SIZE))
            .margin(16)
            .x_label_area_size(if self.x_label.is_empty() { 28 } else { 48 })
            .y_label_area_size(if self.y_label.is_empty() { 52 } else { 72 })
            .build_cartesian_2d(x_axis, y_range)?;
        let category = |x: &f64| {
            let index = x.round().max(0.0) as usize;
            self.labels.get(index).cloned().unwrap_or_default()
        };
        styled_mesh(&mut chart, &self.x_label, &self.y_label)
            .disable_x_mesh()
            .x_label_formatter(&category)
            .y_label_formatter(&tick_label)
            .draw()?;

        let colour = series_colour(0);
        chart.draw_series(self.values.iter().enumerate().map(|(i, value)| {
            let x = i as f64;
            Rectangle::new([(x - 0.4, 0.0), (x + 0.4, *value)], colour.filled())
        }))?;
        if n_bars <= MAX_ANNOTATED_BARS {
            let style = text(TICK_SIZE);
            chart.draw_series(self.values.iter().enumerate().map(|(i, value)| {
                let anchor = if *value >= 0.0 {
                    Pos::new(HPos::Center, VPos::Bottom)
                } else {
                    Pos::new(HPos::Center, VPos::Top)
                };
                Text::new(tick_label(value), (i as f64, *value), style.pos(anchor))
            }))?;
        }
        Ok(())
    }
}

chart_outputs!(BarChart);
