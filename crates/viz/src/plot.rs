//! Line and scatter plots: named series of (x, y) points on linear or log-y axes.

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::chart::{
    Chart, DEFAULT_SIZE, DrawResult, Rasters, TICK_SIZE, TITLE_SIZE, Ticks, check_positive,
    log_tick_label, min_max, padded, series_colour, styled_mesh, text, tick_label,
};
use crate::error::check_xy;
use crate::render::chart_outputs;
use crate::{Error, Result};

/// A line plot, a scatter plot, or both at once: each series is drawn as a line or as points, in
/// its own colour, and named in the legend.
///
/// Data is copied in, so a plot outlives the vectors it was made from. Bad data (no series,
/// lengths that differ, NaN, a non-positive value with [`log_y`](Self::log_y)) is reported by
/// `to_svg`, `to_png` and `save`, naming the series.
///
/// ```
/// let ranks: Vec<f64> = (1..=50).map(f64::from).collect();
/// let errors: Vec<f64> = ranks.iter().map(|k| (-k / 10.0).exp()).collect();
/// let plot = viz::Plot::new("reconstruction error")
///     .x_label("rank k")
///     .y_label("relative error")
///     .line("truncated SVD", &ranks, &errors)
///     .scatter("measured", &[10.0, 20.0], &[0.4, 0.15])
///     .log_y();
/// let svg = plot.to_svg()?;
/// for label in ["reconstruction error", "rank k", "relative error", "truncated SVD", "measured"] {
///     assert!(svg.contains(label), "{label} is missing");
/// }
///
/// let bad = viz::Plot::new("oops").line("loss", &[1.0, 2.0, 3.0], &[0.5, 0.25]);
/// assert_eq!(
///     bad.to_svg().unwrap_err().to_string(),
///     r#"series "loss" has 3 x values but 2 y values"#
/// );
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Plot {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    log_y: bool,
    size: (u32, u32),
}

#[derive(Debug, Clone)]
struct Series {
    name: String,
    xs: Vec<f64>,
    ys: Vec<f64>,
    mark: Mark,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Line,
    Points,
}

impl Plot {
    /// An empty plot with a title, 640×400 pixels.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            log_y: false,
            size: DEFAULT_SIZE,
        }
    }

    /// Names the x axis.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Names the y axis.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Adds a series drawn as a line through the points in the order given. An empty name keeps
    /// the series out of the legend.
    pub fn line(self, name: impl Into<String>, xs: &[f64], ys: &[f64]) -> Self {
        self.add(name.into(), xs, ys, Mark::Line)
    }

    /// Adds a series drawn as separate points.
    pub fn scatter(self, name: impl Into<String>, xs: &[f64], ys: &[f64]) -> Self {
        self.add(name.into(), xs, ys, Mark::Points)
    }

    /// Puts the y axis on a log scale (whole decades), for errors and singular values that span
    /// orders of magnitude. Every y value must then be positive.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Sets the picture size in pixels (each side within 160..=4096).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    fn add(mut self, name: String, xs: &[f64], ys: &[f64], mark: Mark) -> Self {
        self.series.push(Series {
            name,
            xs: xs.to_vec(),
            ys: ys.to_vec(),
            mark,
        });
        self
    }

    /// Draws axes and series; `y_label` formats y ticks and `to_axis` maps a y value onto the axis
    /// (`log10` for a log axis).
    fn draw_on<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        y_label: &dyn Fn(&f64) -> String,
        to_axis: fn(f64) -> f64,
    ) -> DrawResult<(), DB>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        styled_mesh(chart, &self.x_label, &self.y_label)
            .x_label_formatter(&tick_label)
            .y_label_formatter(y_label)
            .draw()?;
        for (index, series) in self.series.iter().enumerate() {
            let colour = series_colour(index);
            let points = (series.xs.iter().copied()).zip(series.ys.iter().map(|y| to_axis(*y)));
            let drawn = match series.mark {
                Mark::Line => chart.draw_series(std::iter::once(PathElement::new(
                    points.collect::<Vec<_>>(),
                    colour.stroke_width(2),
                )))?,
                Mark::Points => {
                    chart.draw_series(points.map(|point| Circle::new(point, 3, colour.filled())))?
                }
            };
            if !series.name.is_empty() {
                let mark = series.mark;
                drawn
                    .label(series.name.as_str())
                    .legend(move |(x, y)| match mark {
                        Mark::Line => {
                            PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                                .into_dyn()
                        }
                        Mark::Points => Circle::new((x + 10, y), 3, colour.filled()).into_dyn(),
                    });
            }
        }
        if self.series.iter().any(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .label_font(text(TICK_SIZE))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        Ok(())
    }
}

impl Chart for Plot {
    fn what(&self) -> String {
        format!("plot {:?}", self.title)
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn validate(&self) -> Result<()> {
        if self.series.is_empty() {
            return Err(Error::Empty { what: self.what() });
        }
        for series in &self.series {
            let what = format!("series {:?}", series.name);
            check_xy(&what, &series.xs, &series.ys)?;
            if self.log_y {
                check_positive(&format!("{what}, y values"), &series.ys)?;
            }
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        _: &mut Rasters,
    ) -> DrawResult<(), DB> {
        let (x_lo, x_hi) = min_max(self.series.iter().flat_map(|s| s.xs.iter().copied()));
        let (y_lo, y_hi) = min_max(self.series.iter().flat_map(|s| s.ys.iter().copied()));
        let x_range = if x_hi > x_lo {
            x_lo..x_hi
        } else {
            padded(x_lo, x_hi, 0.0)
        };
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, text(TITLE_SIZE))
            .margin(16)
            .x_label_area_size(if self.x_label.is_empty() { 28 } else { 48 })
            .y_label_area_size(if self.y_label.is_empty() { 52 } else { 72 });
        if self.log_y {
            let mut chart = builder.build_cartesian_2d(x_range, Ticks::log10(y_lo, y_hi))?;
            self.draw_on(&mut chart, &log_tick_label, f64::log10)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x_range, padded(y_lo, y_hi, 0.05))?;
            self.draw_on(&mut chart, &tick_label, |y| y)?;
        }
        Ok(())
    }
}

chart_outputs!(Plot);
