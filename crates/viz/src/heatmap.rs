//! Heatmaps: a matrix (an attention map, a weight matrix, a residual) as coloured cells with a
//! colour bar.

use ::image::{Rgb, RgbImage};
use ndarray::{Array2, ArrayView2};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{
    Chart, DrawResult, LABEL_SIZE, Raster, Rasters, TITLE_SIZE, Ticks, min_max, padded,
    styled_mesh, text, tick_label,
};
use crate::error::check_finite;
use crate::render::chart_outputs;
use crate::{Error, Result};

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// matplotlib's viridis, dark purple (low) through teal to yellow (high): evenly spaced to the
    /// eye and still ordered when printed in grey. For attention weights, magnitudes, errors.
    #[default]
    Viridis,
    /// Blue (negative) through white (zero) to red (positive), and a colour range centred on zero
    /// unless one is given: for weights, residuals and singular vectors, where the sign matters.
    Diverging,
}

/// Viridis at 0, 1/8, ..., 1 (matplotlib's `viridis` resampled to nine colours).
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [72, 40, 120],
    [62, 73, 137],
    [49, 104, 142],
    [38, 130, 142],
    [31, 158, 137],
    [53, 183, 121],
    [110, 206, 88],
    [253, 231, 37],
];

/// ColorBrewer's RdBu, reversed so red is high, at 0, 1/4, ..., 1.
const DIVERGING: [[u8; 3]; 5] = [
    [33, 102, 172],
    [146, 197, 222],
    [247, 247, 247],
    [244, 165, 130],
    [178, 24, 43],
];

impl Colormap {
    /// The colour at `t` from 0 (low end) to 1 (high end), linearly between the map's stops; `t`
    /// is clamped to 0..=1 and NaN gives the low end.
    ///
    /// ```
    /// use viz::Colormap;
    /// assert_eq!(Colormap::Viridis.colour(0.0), [68, 1, 84]);
    /// assert_eq!(Colormap::Viridis.colour(1.0), [253, 231, 37]);
    /// assert_eq!(Colormap::Diverging.colour(0.5), [247, 247, 247]);
    /// assert_eq!(Colormap::Viridis.colour(7.0), Colormap::Viridis.colour(1.0));
    /// ```
    pub fn colour(self, t: f64) -> [u8; 3] {
        let stops: &[[u8; 3]] = match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Diverging => &DIVERGING,
        };
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let position = t * (stops.len() - 1) as f64;
        let low = (position.floor() as usize).min(stops.len() - 2);
        let fraction = position - low as f64;
        let (a, b) = (stops[low], stops[low + 1]);
        [0, 1, 2].map(|c| {
            (f64::from(a[c]) + fraction * (f64::from(b[c]) - f64::from(a[c]))).round() as u8
        })
    }
}

/// Width of the colour bar and its labels, right of the cells.
const COLOUR_BAR_WIDTH: u32 = 96;

/// A matrix drawn as coloured cells, row 0 at the top as when printed, with a colour bar.
///
/// Cells are one pixel each in an embedded raster scaled up without smoothing, so a 768×768 weight
/// matrix costs what a 768×768 image does, in SVG as in PNG.
///
/// ```
/// use viz::ndarray::array;
///
/// let attention = array![[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]];
/// let map = viz::Heatmap::new("causal attention", attention.view())
///     .x_label("key")
///     .y_label("query")
///     .row_labels(&["The", "cat", "sat"])
///     .col_labels(&["The", "cat", "sat"])
///     .range(0.0, 1.0);
/// let svg = map.to_svg()?;
/// assert!(svg.contains("causal attention") && svg.contains("query") && svg.contains("cat"));
/// // The cells travel as one embedded PNG, not as one element per cell.
/// assert_eq!(svg.matches("data:image/png;base64,").count(), 2); // cells and colour bar
///
/// let error = viz::Heatmap::new("oops", attention.view()).row_labels(&["a"]).to_svg();
/// assert_eq!(error.unwrap_err().to_string(), r#"heatmap "oops" has 1 row labels but 3 rows"#);
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Heatmap {
    title: String,
    x_label: String,
    y_label: String,
    values: Array2<f64>,
    row_labels: Vec<String>,
    col_labels: Vec<String>,
    range: Option<(f64, f64)>,
    colormap: Colormap,
    size: (u32, u32),
}

impl Heatmap {
    /// A heatmap of a matrix (copied), 560×480 pixels, coloured with [`Colormap::Viridis`] from
    /// its smallest to its largest value.
    pub fn new(title: impl Into<String>, matrix: ArrayView2<'_, f64>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            values: matrix.to_owned(),
            row_labels: Vec::new(),
            col_labels: Vec::new(),
            range: None,
            colormap: Colormap::default(),
            size: (560, 480),
        }
    }

    /// Names the x axis (the columns).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Names the y axis (the rows).
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Labels each row (tokens of an attention map, say); without labels, rows show their index.
    pub fn row_labels<S: AsRef<str>>(mut self, labels: &[S]) -> Self {
        self.row_labels = labels.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// Labels each column.
    pub fn col_labels<S: AsRef<str>>(mut self, labels: &[S]) -> Self {
        self.col_labels = labels.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// Fixes the values at the two ends of the colour scale (values beyond take the end colours),
    /// so several heatmaps share one scale: `0.0, 1.0` for attention weights.
    pub fn range(mut self, low: f64, high: f64) -> Self {
        self.range = Some((low, high));
        self
    }

    /// Picks the colour scale.
    pub fn colormap(mut self, colormap: Colormap) -> Self {
        self.colormap = colormap;
        self
    }

    /// Sets the picture size in pixels (each side within 160..=4096).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// The values at the low and high ends of the colour scale.
    fn colour_range(&self) -> (f64, f64) {
        if let Some(range) = self.range {
            return range;
        }
        let (lo, hi) = min_max(self.values.iter().copied());
        match self.colormap {
            Colormap::Viridis if hi > lo => (lo, hi),
            Colormap::Viridis => {
                let range = padded(lo, hi, 0.0);
                (range.start, range.end)
            }
            Colormap::Diverging => {
                let largest = lo.abs().max(hi.abs());
                let largest = if largest > 0.0 { largest } else { 1.0 };
                (-largest, largest)
            }
        }
    }

    /// The matrix as an image, one pixel per cell.
    fn cells(&self) -> RgbImage {
        let (lo, hi) = self.colour_range();
        let (rows, cols) = self.values.dim();
        RgbImage::from_fn(cols as u32, rows as u32, |x, y| {
            let value = self.values[[y as usize, x as usize]];
            Rgb(self.colormap.colour((value - lo) / (hi - lo)))
        })
    }
}

/// Which of `n` cells get a tick: all of them when labelled and few, else about ten at round steps.
fn tick_indices(n: usize, labelled: bool) -> Vec<usize> {
    if labelled && n <= 40 {
        return (0..n).collect();
    }
    let step = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
        .into_iter()
        .find(|step| n.div_ceil(*step) <= 10)
        .unwrap_or(n.div_ceil(10));
    (0..n).step_by(step).collect()
}

fn cell_label(labels: &[String], index: usize) -> String {
    labels
        .get(index)
        .cloned()
        .unwrap_or_else(|| index.to_string())
}

impl Chart for Heatmap {
    fn what(&self) -> String {
        format!("heatmap {:?}", self.title)
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn validate(&self) -> Result<()> {
        let (rows, cols) = self.values.dim();
        if rows == 0 || cols == 0 {
            return Err(Error::Empty { what: self.what() });
        }
        for (row, values) in self.values.rows().into_iter().enumerate() {
            check_finite(&format!("{}, row {row}", self.what()), &values.to_vec())?;
        }
        for (labels, name, n, n_name) in [
            (&self.row_labels, "row labels", rows, "rows"),
            (&self.col_labels, "column labels", cols, "columns"),
        ] {
            if !labels.is_empty() && labels.len() != n {
                return Err(Error::LengthMismatch {
                    what: self.what(),
                    left_name: name,
                    left: labels.len(),
                    right_name: n_name,
                    right: n,
                });
            }
        }
        if let Some((low, high)) = self.range {
            check_finite("heatmap range", &[low, high])?;
            if low >= high {
                return Err(Error::InvalidArgument {
                    name: "range",
                    value: format!("{low}..{high}"),
                    reason: "the low end must be below the high end".into(),
                });
            }
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rasters: &mut Rasters,
    ) -> DrawResult<(), DB> {
        let (rows, cols) = self.values.dim();
        let area = root.titled(&self.title, text(TITLE_SIZE))?;
        let width = area.dim_in_pixel().0;
        let (main, bar) = area.split_horizontally(width.saturating_sub(COLOUR_BAR_WIDTH));

        // Row 0 at the top: row i spans rows - i - 1 ..= rows - i on the y axis.
        let x_ticks = tick_indices(cols, !self.col_labels.is_empty());
        let y_ticks = tick_indices(rows, !self.row_labels.is_empty());
        let x_axis = Ticks::new(
            0.0..cols as f64,
            x_ticks.iter().map(|j| *j as f64 + 0.5).collect(),
        );
        let y_axis = Ticks::new(
            0.0..rows as f64,
            y_ticks.iter().map(|i| (rows - i) as f64 - 0.5).collect(),
        );
        // Wide enough for the longest row label (about 7 px a character at the tick font size).
        let longest_row_label = self.row_labels.iter().map(|l| l.chars().count()).max();
        let row_labels_width = longest_row_label.map_or(40, |n| 12 + 7 * n as u32).max(40);
        let mut chart = ChartBuilder::on(&main)
            .margin(8)
            .x_label_area_size(if self.x_label.is_empty() { 28 } else { 48 })
            .y_label_area_size(row_labels_width + if self.y_label.is_empty() { 12 } else { 32 })
            .build_cartesian_2d(x_axis, y_axis)?;
        // Cells first, so the axes lie over their edges in PNG as in SVG.
        rasters.place(
            root,
            Raster::over(chart.plotting_area(), self.cells(), true),
        )?;
        let column = |x: &f64| cell_label(&self.col_labels, x.floor().max(0.0) as usize);
        let row = |y: &f64| {
            cell_label(
                &self.row_labels,
                (rows as f64 - y).floor().max(0.0) as usize,
            )
        };
        styled_mesh(&mut chart, &self.x_label, &self.y_label)
            .disable_mesh()
            .x_label_formatter(&column)
            .y_label_formatter(&row)
            .draw()?;

        // The colour bar spans the same height as the cells.
        let (_, cell_ys) = chart.plotting_area().get_pixel_range();
        let (_, bar_ys) = bar.get_pixel_range();
        let bar = bar.margin(
            (cell_ys.start - bar_ys.start).max(0),
            (bar_ys.end - cell_ys.end).max(0),
            8,
            0,
        );
        let (lo, hi) = self.colour_range();
        let mut scale = ChartBuilder::on(&bar)
            .set_label_area_size(LabelAreaPosition::Right, 56)
            .build_cartesian_2d(0.0..1.0, lo..hi)?;
        let gradient = RgbImage::from_fn(1, 256, |_, y| {
            Rgb(self.colormap.colour(1.0 - f64::from(y) / 255.0))
        });
        rasters.place(root, Raster::over(scale.plotting_area(), gradient, true))?;
        scale
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .label_style(text(LABEL_SIZE - 3.0))
            .y_label_formatter(&tick_label)
            .draw()?;
        Ok(())
    }
}

chart_outputs!(Heatmap);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_every_labelled_cell_and_about_ten_otherwise() {
        assert_eq!(tick_indices(5, true), vec![0, 1, 2, 3, 4]);
        assert_eq!(tick_indices(5, false), vec![0, 1, 2, 3, 4]);
        assert_eq!(tick_indices(64, false), vec![0, 10, 20, 30, 40, 50, 60]);
        assert_eq!(tick_indices(768, true).len(), 8);
    }

    #[test]
    fn colormaps_interpolate_between_stops() {
        assert_eq!(Colormap::Viridis.colour(0.5), VIRIDIS[4]);
        assert_eq!(Colormap::Diverging.colour(0.0), DIVERGING[0]);
        assert_eq!(Colormap::Diverging.colour(0.125), [90, 150, 197]);
        assert_eq!(Colormap::Viridis.colour(f64::NAN), VIRIDIS[0]);
    }

    #[test]
    fn diverging_ranges_are_symmetric_about_zero() {
        let map =
            Heatmap::new("w", ndarray::array![[-0.5, 2.0]].view()).colormap(Colormap::Diverging);
        assert_eq!(map.colour_range(), (-2.0, 2.0));
        let constant = Heatmap::new("c", ndarray::array![[3.0, 3.0]].view());
        assert_eq!(constant.colour_range(), (1.5, 4.5));
    }
}
