//! Images: one shown as is ([`Image`]), or several side by side with captions ([`ImageGrid`]).

use std::path::Path;

use ::image::{DynamicImage, GrayImage, RgbImage, RgbaImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    Chart, DrawResult, LABEL_SIZE, MAX_SIDE, MIN_SIDE, Raster, Rasters, TITLE_SIZE, text,
};
use crate::render::{self, chart_outputs};
use crate::{Error, Result};

/// One image, for display in a notebook or saving as PNG.
///
/// Made from an [`image::DynamicImage`] (what `lowrank::image::ImageChannels::to_image` returns), an
/// RGB or grey image buffer, raw RGB bytes, or encoded PNG/JPEG bytes.
///
/// ```
/// let pixels: Vec<u8> = (0..16 * 8).flat_map(|i| [(i * 2) as u8, 0, 255 - (i * 2) as u8]).collect();
/// let image = viz::Image::from_rgb8(16, 8, pixels)?;
/// let png = image.to_png()?;
/// assert_eq!(viz::Image::decode(&png)?.as_dynamic().to_rgb8(), image.as_dynamic().to_rgb8());
///
/// let block = image.display_block()?;
/// assert!(block.starts_with("EVCXR_BEGIN_CONTENT image/png\niVBORw0KGgo")); // PNG magic, base64
///
/// assert!(viz::Image::from_rgb8(16, 8, vec![0; 10]).is_err());
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    image: DynamicImage,
}

impl Image {
    /// Wraps an image.
    pub fn new(image: DynamicImage) -> Self {
        Self { image }
    }

    /// An image from `width × height` RGB pixels, row by row, 3 bytes each.
    pub fn from_rgb8(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self> {
        let n_bytes = pixels.len();
        RgbImage::from_raw(width, height, pixels)
            .map(|image| Self::new(image.into()))
            .ok_or_else(|| Error::LengthMismatch {
                what: format!("a {width}x{height} RGB image"),
                left_name: "bytes",
                left: n_bytes,
                right_name: "expected (3 per pixel)",
                right: width as usize * height as usize * 3,
            })
    }

    /// Decodes a PNG or JPEG file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        ::image::load_from_memory(bytes)
            .map(Self::new)
            .map_err(|source| Error::Image {
                op: "decode",
                source,
            })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.image.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.image.height()
    }

    /// The wrapped image.
    pub fn as_dynamic(&self) -> &DynamicImage {
        &self.image
    }

    /// The image as the bytes of a PNG file.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        self.check_not_empty()?;
        render::encode_png(&self.image)
    }

    /// Saves the image as PNG (the only extension accepted), atomically: a temporary file in the
    /// same folder renamed into place.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if render::extension(path) != "png" {
            return Err(render::unknown_extension(path, ".png"));
        }
        render::write_atomically(path, &self.to_png()?)
    }

    /// The block [`evcxr_display`](Self::evcxr_display) prints: the PNG in base64 between
    /// `EVCXR_BEGIN_CONTENT image/png` and `EVCXR_END_CONTENT`.
    pub fn display_block(&self) -> Result<String> {
        Ok(render::png_block(&self.to_png()?))
    }

    /// Shows the image inline in an evcxr notebook.
    pub fn evcxr_display(&self) {
        render::print_block(self.display_block());
    }

    fn check_not_empty(&self) -> Result<()> {
        if self.width() == 0 || self.height() == 0 {
            return Err(Error::Empty {
                what: format!("a {}x{} image", self.width(), self.height()),
            });
        }
        Ok(())
    }
}

impl From<DynamicImage> for Image {
    fn from(image: DynamicImage) -> Self {
        Self::new(image)
    }
}

impl From<RgbImage> for Image {
    fn from(image: RgbImage) -> Self {
        Self::new(image.into())
    }
}

impl From<RgbaImage> for Image {
    fn from(image: RgbaImage) -> Self {
        Self::new(image.into())
    }
}

impl From<GrayImage> for Image {
    fn from(image: GrayImage) -> Self {
        Self::new(image.into())
    }
}

/// Height of the caption strip under each image, and the gap around panels.
const CAPTION_HEIGHT: u32 = 28;
const GAP: u32 = 12;
const TITLE_HEIGHT: u32 = 40;

/// Longest side of a panel when no size is given: images larger are shown smaller, smaller ones
/// are enlarged (pixels stay sharp) so an 8×8 matrix-as-image is still visible.
const MAX_PANEL: u32 = 300;
const MIN_PANEL: u32 = 128;

/// The smallest a panel may show an image, in pixels, when a size is given.
const MIN_SHOWN: u32 = 16;

/// Images side by side, each with a caption under it: an original beside its rank-5, -20 and -50
/// reconstructions, say. Each image keeps its aspect ratio within its panel.
///
/// ```
/// let original = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 128]));
/// let flat = image::RgbImage::from_pixel(64, 48, image::Rgb([128, 128, 128]));
/// let grid = viz::ImageGrid::new("rank-k reconstructions")
///     .image("original", original)
///     .image("rank 1", flat);
/// let svg = grid.to_svg()?;
/// assert!(svg.contains("rank-k reconstructions") && svg.contains("original") && svg.contains("rank 1"));
/// assert_eq!(svg.matches("<image ").count(), 2);
///
/// assert!(viz::ImageGrid::new("empty").to_png().is_err());
/// # Ok::<(), viz::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageGrid {
    title: String,
    panels: Vec<(String, Image)>,
    columns: Option<usize>,
    size: Option<(u32, u32)>,
}

impl ImageGrid {
    /// An empty grid with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            panels: Vec::new(),
            columns: None,
            size: None,
        }
    }

    /// Adds an image with its caption, after those already added (left to right, then down).
    pub fn image(mut self, caption: impl Into<String>, image: impl Into<Image>) -> Self {
        self.panels.push((caption.into(), image.into()));
        self
    }

    /// Sets how many images a row holds (default: all of them, up to four).
    pub fn columns(mut self, columns: usize) -> Self {
        self.columns = Some(columns);
        self
    }

    /// Sets the picture size in pixels (each side within 160..=4096); by default it follows from the
    /// images: each panel's longest side between 128 and 300 pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    fn grid(&self) -> (usize, usize) {
        let columns = self
            .columns
            .unwrap_or(self.panels.len().min(4))
            .clamp(1, self.panels.len().max(1));
        (columns, self.panels.len().div_ceil(columns).max(1))
    }

    /// The default size: panels as large as the largest image, within MIN_PANEL..=MAX_PANEL.
    fn default_size(&self) -> (u32, u32) {
        let widest = self
            .panels
            .iter()
            .map(|(_, i)| i.width())
            .max()
            .unwrap_or(1)
            .max(1);
        let tallest = self
            .panels
            .iter()
            .map(|(_, i)| i.height())
            .max()
            .unwrap_or(1)
            .max(1);
        let longest = widest.max(tallest);
        let scale = f64::from(longest.clamp(MIN_PANEL, MAX_PANEL)) / f64::from(longest);
        let panel = |side: u32| (f64::from(side) * scale).round() as u32;
        let (columns, rows) = self.grid();
        let width = columns as u32 * (panel(widest) + GAP) + GAP;
        let height = TITLE_HEIGHT + rows as u32 * (panel(tallest) + CAPTION_HEIGHT + GAP);
        (
            width.clamp(MIN_SIDE, MAX_SIDE),
            height.clamp(MIN_SIDE, MAX_SIDE),
        )
    }
}

impl Chart for ImageGrid {
    fn what(&self) -> String {
        format!("image grid {:?}", self.title)
    }

    fn size(&self) -> (u32, u32) {
        self.size.unwrap_or_else(|| self.default_size())
    }

    fn validate(&self) -> Result<()> {
        if self.panels.is_empty() {
            return Err(Error::Empty { what: self.what() });
        }
        if self.columns == Some(0) {
            return Err(Error::InvalidArgument {
                name: "columns",
                value: "0".into(),
                reason: "a row holds at least one image".into(),
            });
        }
        for (caption, image) in &self.panels {
            image.check_not_empty().map_err(|_| Error::Empty {
                what: format!("image {caption:?} in {}", self.what()),
            })?;
        }
        let (columns, rows) = self.grid();
        let (width, height) = self.size();
        let cell_width = width / columns as u32;
        let cell_height = height.saturating_sub(TITLE_HEIGHT) / rows as u32;
        if cell_width < GAP + MIN_SHOWN || cell_height < GAP + CAPTION_HEIGHT + MIN_SHOWN {
            return Err(Error::InvalidArgument {
                name: "size",
                value: format!("{width}x{height}"),
                reason: format!(
                    "{} images in {rows} rows of {columns} leave {cell_width}x{cell_height} pixels \
                     each, too small for an image and its caption",
                    self.panels.len()
                ),
            });
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rasters: &mut Rasters,
    ) -> DrawResult<(), DB> {
        let area = root.titled(&self.title, text(TITLE_SIZE))?;
        let (columns, rows) = self.grid();
        let caption_style = text(LABEL_SIZE).pos(Pos::new(HPos::Center, VPos::Center));
        for ((caption, image), cell) in self.panels.iter().zip(area.split_evenly((rows, columns))) {
            let cell = cell.margin(GAP / 2, GAP / 2, GAP / 2, GAP / 2);
            // `validate` made every cell larger than its gaps and caption.
            let (width, height) = cell.dim_in_pixel();
            let box_height = height.saturating_sub(CAPTION_HEIGHT).max(1);
            let (picture, label) = cell.split_vertically(box_height);
            let (x0, y0) = picture.get_base_pixel();
            // Fit the image in its box, keeping its aspect ratio, centred.
            let scale = f64::min(
                f64::from(width) / f64::from(image.width()),
                f64::from(box_height) / f64::from(image.height()),
            );
            let shown_width = ((f64::from(image.width()) * scale).round() as u32).max(1);
            let shown_height = ((f64::from(image.height()) * scale).round() as u32).max(1);
            rasters.place(
                root,
                Raster {
                    left: x0.saturating_add((width.saturating_sub(shown_width) / 2) as i32),
                    top: y0.saturating_add((box_height.saturating_sub(shown_height) / 2) as i32),
                    width: shown_width,
                    height: shown_height,
                    image: image.as_dynamic().to_rgb8(),
                    // Enlarged images keep sharp pixels; reduced ones are smoothed.
                    pixelated: scale >= 1.0,
                },
            )?;
            let (label_width, label_height) = label.dim_in_pixel();
            label.draw_text(
                caption,
                &caption_style,
                ((label_width / 2) as i32, (label_height / 2) as i32),
            )?;
        }
        Ok(())
    }
}

chart_outputs!(ImageGrid);
