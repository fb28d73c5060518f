//! What every chart shares: the private [`Chart`] trait the renderers call, raster overlays, and the
//! house style (colours, text sizes, tick labels, axis ranges).

use std::ops::Range;

use ::image::RgbImage;
use ::image::imageops::{self, FilterType};
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::{Error, Result};

/// The size of a chart when none is given: fits a notebook cell and a book page.
pub(crate) const DEFAULT_SIZE: (u32, u32) = (640, 400);

/// Smallest and largest width or height: below, labels no longer fit (plotters may panic laying
/// them out); above, a PNG buffer would take over 50 MB.
pub(crate) const MIN_SIDE: u32 = 160;
pub(crate) const MAX_SIDE: u32 = 4096;

pub(crate) const TITLE_SIZE: f64 = 22.0;
pub(crate) const LABEL_SIZE: f64 = 16.0;
pub(crate) const TICK_SIZE: f64 = 13.0;

/// A plotters result whose error carries the backend's error type.
pub(crate) type DrawResult<T, DB> =
    Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart the renderers in `render.rs` can draw on any plotters backend.
pub(crate) trait Chart {
    /// Names the chart in error messages, e.g. `plot "loss"`.
    fn what(&self) -> String;

    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);

    /// Checks the data. Renderers call it before drawing, so `draw` never sees bad input.
    fn validate(&self) -> Result<()>;

    /// Draws on `root` (already filled white), placing pictures through `rasters`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rasters: &mut Rasters,
    ) -> DrawResult<(), DB>;
}

/// A picture shown at a pixel rectangle: heatmap cells, a colour bar, an image in a grid.
pub(crate) struct Raster {
    pub(crate) left: i32,
    pub(crate) top: i32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) image: RgbImage,
    /// Nearest-neighbour scaling with sharp cell edges (matrices), else smooth (photographs).
    pub(crate) pixelated: bool,
}

impl Raster {
    /// A raster filling the whole of `area`.
    pub(crate) fn over<DB: DrawingBackend, CT: CoordTranslate>(
        area: &DrawingArea<DB, CT>,
        image: RgbImage,
        pixelated: bool,
    ) -> Self {
        let (xs, ys) = area.get_pixel_range();
        Self {
            left: xs.start,
            top: ys.start,
            width: xs.end.saturating_sub(xs.start).max(1) as u32,
            height: ys.end.saturating_sub(ys.start).max(1) as u32,
            image,
            pixelated,
        }
    }

    /// The image resized to the rectangle.
    pub(crate) fn scaled(&self) -> RgbImage {
        let filter = if self.pixelated {
            FilterType::Nearest
        } else {
            FilterType::Triangle
        };
        imageops::resize(&self.image, self.width, self.height, filter)
    }
}

/// Where rasters go. Drawing one rectangle per matrix cell would give a 768×768 weight matrix
/// 590,000 SVG elements, so rasters bypass plotters' shapes: a bitmap gets the scaled pixels at once
/// (plotters' `BitMapElement`, a plain copy), an SVG collects them and embeds each as one base64 PNG
/// `<image>` under everything else (what matplotlib does for `imshow`).
pub(crate) struct Rasters {
    pub(crate) for_svg: bool,
    pub(crate) collected: Vec<Raster>,
}

impl Rasters {
    pub(crate) fn place<DB: DrawingBackend>(
        &mut self,
        root: &DrawingArea<DB, Shift>,
        raster: Raster,
    ) -> DrawResult<(), DB> {
        if self.for_svg {
            self.collected.push(raster);
            return Ok(());
        }
        let scaled = raster.scaled();
        let size = scaled.dimensions();
        match BitMapElement::with_owned_buffer((raster.left, raster.top), size, scaled.into_raw()) {
            Some(element) => root.draw(&element),
            // The buffer always matches its dimensions; nothing to draw if it somehow did not.
            None => Ok(()),
        }
    }
}

/// Light grey for grid lines: visible, never louder than the data.
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);

/// A mesh in the house style: tick and axis-label fonts, light grid lines, axis descriptions when
/// given. The caller sets label formatters as its axes need, then calls `draw`.
pub(crate) fn styled_mesh<'a, 'b, DB, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    let mut mesh = chart.configure_mesh();
    mesh.label_style(text(TICK_SIZE))
        .axis_desc_style(text(LABEL_SIZE))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT);
    if !x_desc.is_empty() {
        mesh.x_desc(x_desc);
    }
    if !y_desc.is_empty() {
        mesh.y_desc(y_desc);
    }
    mesh
}

/// Tableau's ten colours (matplotlib's default cycle): distinct, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `index`-th series, cycling through the palette.
pub(crate) fn series_colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Text in the bundled font.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    (crate::font::FAMILY, size).into_font().color(&BLACK)
}

/// A tick label with at most four significant digits: `0.25`, `1200`, `1e-7`, `3.5e6`.
pub(crate) fn tick_label(value: &f64) -> String {
    let value = *value;
    if value == 0.0 || !value.is_finite() {
        return format!("{}", if value == 0.0 { 0.0 } else { value });
    }
    // Round through scientific notation so 0.30000000000000004 prints as 0.3.
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    if (1e-3..1e5).contains(&rounded.abs()) {
        format!("{rounded}")
    } else {
        format!("{rounded:e}")
    }
}

/// `lo..hi` widened by `fraction` of its length on each side; a single value gets a unit-wide range.
pub(crate) fn padded(lo: f64, hi: f64, fraction: f64) -> Range<f64> {
    if hi > lo {
        let pad = (hi - lo) * fraction;
        lo - pad..hi + pad
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.5 };
        lo - pad..hi + pad
    }
}

/// An f64 axis with tick marks exactly where asked: decades on a log axis, cell centres on a heatmap.
///
/// plotters' own log axis places no tick at all when the data stays inside one decade and drops the
/// lowest decade to rounding; a log axis here is a linear axis over `log10(y)` with these ticks.
#[derive(Clone)]
pub(crate) struct Ticks {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticks {
    pub(crate) fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Self {
            inner: range.into(),
            ticks,
        }
    }

    /// A log10 axis over whole decades holding `lo..=hi` (both positive): values drawn on it are
    /// `log10(y)`; ticks fall on powers of ten (every other one or sparser past eight decades) and
    /// also on 2 and 5 times them when the data spans two decades or fewer.
    pub(crate) fn log10(lo: f64, hi: f64) -> Self {
        let low = lo.log10().floor();
        let high = hi.log10().ceil().max(low + 1.0);
        let n_decades = (high - low) as usize;
        let step = n_decades.div_ceil(8).max(1);
        let mut ticks: Vec<f64> = (0..=n_decades)
            .step_by(step)
            .map(|i| low + i as f64)
            .collect();
        if n_decades <= 2 {
            for i in 0..n_decades {
                let decade = low + i as f64;
                ticks.extend([decade + 2f64.log10(), decade + 5f64.log10()]);
            }
        }
        Self::new(low..high, ticks)
    }
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light (minor) grid lines are off in the house style; ticks are all major.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The label of a tick on a [`Ticks::log10`] axis, which holds `log10(y)`.
pub(crate) fn log_tick_label(exponent: &f64) -> String {
    tick_label(&10f64.powf(*exponent))
}

/// Smallest and largest of finite values (callers validate first).
pub(crate) fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// Checks a requested picture size.
pub(crate) fn check_size((width, height): (u32, u32)) -> Result<()> {
    let range = MIN_SIDE..=MAX_SIDE;
    if range.contains(&width) && range.contains(&height) {
        Ok(())
    } else {
        Err(Error::InvalidSize {
            width,
            height,
            min: MIN_SIDE,
            max: MAX_SIDE,
        })
    }
}

/// Checks that values can go on a log axis.
pub(crate) fn check_positive(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| *v <= 0.0) {
        Some(index) => Err(Error::OutOfRange {
            what: what.to_string(),
            index,
            value: values[index],
            reason: "a log scale shows only positive values",
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_round_to_four_digits_and_switch_to_exponents_far_from_one() {
        let cases = [
            (0.0, "0"),
            (0.1 + 0.2, "0.3"),
            (1234.5678, "1235"),
            (-2.5, "-2.5"),
            (1e-7, "1e-7"),
            (3.5e6, "3.5e6"),
        ];
        for (value, expected) in cases {
            assert_eq!(tick_label(&value), expected, "tick label of {value}");
        }
    }

    fn labels(axis: &Ticks) -> Vec<String> {
        axis.key_points(plotters::coord::ranged1d::BoldPoints(10))
            .iter()
            .map(log_tick_label)
            .collect()
    }

    #[test]
    fn log_axes_widen_to_whole_decades_and_label_powers_of_ten() {
        let one_decade = Ticks::log10(2.0, 8.0);
        assert_eq!(one_decade.range(), 0.0..1.0);
        assert_eq!(labels(&one_decade), ["1", "10", "2", "5"]);

        let wide = Ticks::log10(3e-5, 40.0);
        assert_eq!(wide.range(), -5.0..2.0);
        assert_eq!(
            labels(&wide),
            ["1e-5", "1e-4", "0.001", "0.01", "0.1", "1", "10", "100"]
        );

        let twenty = Ticks::log10(1e-17, 1e3);
        assert_eq!(
            labels(&twenty),
            ["1e-17", "1e-14", "1e-11", "1e-8", "1e-5", "0.01", "10"]
        );
        assert_eq!(Ticks::log10(10.0, 10.0).range(), 1.0..2.0);
    }

    #[test]
    fn padding_a_single_value_still_gives_a_range() {
        assert_eq!(padded(0.0, 0.0, 0.05), -1.0..1.0);
        assert_eq!(padded(4.0, 4.0, 0.05), 2.0..6.0);
        assert_eq!(padded(0.0, 10.0, 0.1), -1.0..11.0);
    }
}
