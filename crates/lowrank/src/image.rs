//! Images compressed channel by channel with a truncated SVD: loading and atomic saving, procedural
//! samples, storage ratio and PSNR.
//!
//! An h×w image is one h×w matrix per channel (grey: 1, RGB: 3). Keeping `k` singular triplets of a
//! channel stores `k·(h + w + 1)` numbers instead of `h·w`, and by Eckart–Young no other rank-k matrix
//! is closer to the channel. How close, in the units image people use, is the PSNR.
//!
//! ```
//! use lowrank::image::{compress, psnr, sample};
//!
//! let image = sample("gradient", 256, 256)?;
//! let compressed = compress(&image, 2)?;
//! assert_eq!(compressed.ranks, vec![2, 2, 2]);
//! assert!((compressed.storage_ratio - 256.0 * 256.0 / (2.0 * 513.0)).abs() < 1e-12);
//! // A gradient is rank 1 per channel before rounding to 8 bits: rank 2 loses almost nothing.
//! assert!(psnr(&image, &compressed.image)? > 50.0);
//! # Ok::<(), lowrank::Error>(())
//! ```

use std::f64::consts::PI;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use ::image::ImageFormat;
use ::image::{DynamicImage, GrayImage, ImageError, ImageReader, RgbImage};
use ndarray::{Array1, Array2};

use crate::error::{check_finite, check_rank};
use crate::{Error, Result, spectrum, svd};

/// The procedural samples [`sample`] draws, each teaching something about rank.
///
/// - `gradient`: smooth ramps, rank 1 per channel before rounding: one triplet is nearly perfect;
/// - `checkerboard`: hard edges, yet exactly rank 2 per channel (a constant plus one outer product);
/// - `stripes`: diagonal waves, rank 3 per channel before rounding, because `sin(x + y)` splits into
///   `sin x·cos y + cos x·sin y`;
/// - `plasma`: a sum of sines through a colour palette: moderate rank, the spectrum decays steadily;
/// - `rings`: concentric bands of colour: curved hard edges do not separate in x and y, so the rank is
///   high, like a photograph's (rank 50 gives 28 dB at 512×512, the astronaut photograph 27 dB), and
///   low ranks turn it into a plaid.
pub const SAMPLES: &[&str] = &["gradient", "checkerboard", "stripes", "plasma", "rings"];

/// An image as one height×width matrix per channel: 1 channel for grey, 3 for RGB, values in 0..=255.
///
/// Values are `f64` so a reconstruction can hold what the SVD gives (slightly below 0 or above 255);
/// conversions to 8 bits round and clamp.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageChannels {
    channels: Vec<Array2<f64>>,
}

impl ImageChannels {
    /// Builds an image from 1 (grey) or 3 (RGB) matrices of one shape, with finite values.
    ///
    /// ```
    /// use lowrank::{image::ImageChannels, ndarray::Array2};
    /// let grey = ImageChannels::from_channels(vec![Array2::from_elem((4, 6), 128.0)])?;
    /// assert_eq!((grey.height(), grey.width(), grey.n_channels()), (4, 6, 1));
    /// assert!(ImageChannels::from_channels(vec![Array2::zeros((4, 6)); 2]).is_err());
    /// # Ok::<(), lowrank::Error>(())
    /// ```
    pub fn from_channels(channels: Vec<Array2<f64>>) -> Result<Self> {
        if channels.len() != 1 && channels.len() != 3 {
            return Err(Error::InvalidArgument {
                name: "channels",
                value: channels.len().to_string(),
                reason: "an image has 1 (grey) or 3 (RGB) channels".into(),
            });
        }
        for channel in &channels {
            check_finite("image channel", &channel.view())?;
            if channel.dim() != channels[0].dim() {
                return Err(Error::ShapeMismatch {
                    op: "image channels".into(),
                    left: channels[0].shape().to_vec(),
                    right: channel.shape().to_vec(),
                });
            }
        }
        Ok(Self { channels })
    }

    /// Splits an 8-bit image into channels: colour images give 3, grey ones 1; alpha is dropped and
    /// 16-bit images are scaled to 8 bits.
    ///
    /// ```
    /// use lowrank::image::ImageChannels;
    /// let rgba = image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 128]));
    /// let channels = ImageChannels::from_image(&rgba.into());
    /// assert_eq!(channels.shape(), vec![2, 3, 3]);
    /// assert_eq!(channels.channels()[2][[1, 2]], 30.0);
    /// ```
    pub fn from_image(image: &DynamicImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let channels = if image.color().has_color() {
            let rgb = image.to_rgb8();
            (0..3)
                .map(|c| {
                    Array2::from_shape_fn((height, width), |(i, j)| {
                        f64::from(rgb.get_pixel(j as u32, i as u32).0[c])
                    })
                })
                .collect()
        } else {
            let grey = image.to_luma8();
            vec![Array2::from_shape_fn((height, width), |(i, j)| {
                f64::from(grey.get_pixel(j as u32, i as u32).0[0])
            })]
        };
        Self { channels }
    }

    /// The 8-bit image: each value rounded to the nearest integer and clamped to 0..=255.
    ///
    /// ```
    /// use lowrank::{image::ImageChannels, ndarray::array};
    /// let grey = ImageChannels::from_channels(vec![array![[-3.0, 127.5, 300.0]]])?;
    /// assert_eq!(grey.to_image().to_luma8().into_raw(), vec![0, 128, 255]);
    /// # Ok::<(), lowrank::Error>(())
    /// ```
    pub fn to_image(&self) -> DynamicImage {
        let (width, height) = (self.width() as u32, self.height() as u32);
        if let [grey] = self.channels.as_slice() {
            DynamicImage::ImageLuma8(GrayImage::from_fn(width, height, |x, y| {
                ::image::Luma([to_u8(grey[[y as usize, x as usize]])])
            }))
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
                let at = [y as usize, x as usize];
                ::image::Rgb([0, 1, 2].map(|c| to_u8(self.channels[c][at])))
            }))
        }
    }

    /// Writes the 8-bit image in the format its extension names (`.png`, `.jpg`, `.jpeg`).
    ///
    /// The file is encoded into a temporary file in the target's folder and renamed into place, so an
    /// interrupted save leaves any previous file whole.
    ///
    /// ```
    /// use lowrank::image::{load, sample};
    /// let dir = tempfile::tempdir().map_err(|e| lowrank::Error::Io { path: "tmp".into(), source: e })?;
    /// let image = sample("checkerboard", 64, 48)?;
    /// image.save(&dir.path().join("board.png"))?;
    /// assert_eq!(load(&dir.path().join("board.png"))?, image);
    /// # Ok::<(), lowrank::Error>(())
    /// ```
    pub fn save(&self, path: &Path) -> Result<()> {
        let format = output_format(path)?;
        let io_error = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut temp = temp_file_beside(path).map_err(io_error)?;
        {
            let mut writer = std::io::BufWriter::new(temp.as_file_mut());
            self.to_image()
                .write_to(&mut writer, format)
                .map_err(|source| Error::ImageWrite {
                    path: path.to_path_buf(),
                    source,
                })?;
            writer.flush().map_err(io_error)?;
        }
        temp.persist(path).map_err(|e| io_error(e.error))?;
        Ok(())
    }

    /// The matrices, one per channel (R, G, B or grey).
    pub fn channels(&self) -> &[Array2<f64>] {
        &self.channels
    }

    /// Gives the matrices back.
    pub fn into_channels(self) -> Vec<Array2<f64>> {
        self.channels
    }

    /// Rows of pixels.
    pub fn height(&self) -> usize {
        self.channels.first().map_or(0, |c| c.nrows())
    }

    /// Columns of pixels.
    pub fn width(&self) -> usize {
        self.channels.first().map_or(0, |c| c.ncols())
    }

    /// 1 for grey, 3 for RGB.
    pub fn n_channels(&self) -> usize {
        self.channels.len()
    }

    /// `[height, width, channels]`, the layout of scikit-image arrays.
    pub fn shape(&self) -> Vec<usize> {
        vec![self.height(), self.width(), self.n_channels()]
    }
}

/// Reads a PNG or JPEG (the format is guessed from the content, so a misnamed file still loads).
///
/// ```
/// let missing = lowrank::image::load(std::path::Path::new("no/such/photo.png"));
/// assert!(missing.unwrap_err().to_string().starts_with("cannot read image no/such/photo.png"));
/// ```
pub fn load(path: &Path) -> Result<ImageChannels> {
    let read_error = |source| Error::ImageRead {
        path: path.to_path_buf(),
        source,
    };
    let image = ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(|e| read_error(ImageError::IoError(e)))?
        .decode()
        .map_err(read_error)?;
    Ok(ImageChannels::from_image(&image))
}

/// What to keep of each channel's spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Keep {
    /// The same number of singular triplets in every channel.
    Rank(usize),
    /// Per channel, the fewest triplets whose squared singular values reach this fraction of the total.
    Energy(f64),
}

/// An image rebuilt from a truncated SVD of each channel, with what that cost and kept.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressedImage {
    /// The reconstruction, unrounded (values may stray slightly outside 0..=255).
    pub image: ImageChannels,
    /// Singular triplets kept per channel.
    pub ranks: Vec<usize>,
    /// Fraction of Σσ² kept per channel, in (0, 1].
    pub energy: Vec<f64>,
    /// Numbers the factors hold: `rank·(height + width + 1)` summed over channels.
    pub values_stored: usize,
    /// Numbers the image holds: `height·width·channels`.
    pub original_values: usize,
    /// `original_values / values_stored`: above 1 the factors are smaller than the image.
    pub storage_ratio: f64,
    /// The full spectrum of each channel, largest first (for spectrum plots).
    pub singular_values: Vec<Array1<f64>>,
}

/// Keeps the best rank-`rank` approximation of every channel.
///
/// A rank of 0 or above `min(height, width)` is [`Error::RankOutOfRange`].
///
/// ```
/// use lowrank::image::{compress, psnr, sample};
/// let board = sample("checkerboard", 128, 96)?;
/// let compressed = compress(&board, 2)?;
/// assert_eq!(compressed.values_stored, 3 * 2 * (96 + 128 + 1));
/// assert_eq!(psnr(&board, &compressed.image)?, f64::INFINITY); // exactly rank 2
/// assert!(compress(&board, 97).is_err());
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn compress(image: &ImageChannels, rank: usize) -> Result<CompressedImage> {
    compress_with_progress(image, Keep::Rank(rank), |_| {})
}

/// Keeps, per channel, the smallest rank whose singular values hold at least `energy` of Σσ².
///
/// `energy` must lie in (0, 1], else [`Error::InvalidArgument`].
///
/// ```
/// use lowrank::image::{compress_to_energy, sample};
/// let image = sample("gradient", 200, 100)?;
/// let compressed = compress_to_energy(&image, 0.99)?;
/// assert_eq!(compressed.ranks, vec![1, 1, 1]);
/// assert!(compressed.energy.iter().all(|&e| e >= 0.99));
/// assert!(compress_to_energy(&image, 1.5).is_err());
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn compress_to_energy(image: &ImageChannels, energy: f64) -> Result<CompressedImage> {
    compress_with_progress(image, Keep::Energy(energy), |_| {})
}

/// [`compress`] or [`compress_to_energy`], calling `on_channel(index)` as each channel's SVD starts
/// (a command line shows progress with it).
///
/// ```
/// use lowrank::image::{compress_with_progress, sample, Keep};
/// let mut started = Vec::new();
/// let compressed = compress_with_progress(&sample("stripes", 64, 64)?, Keep::Rank(3), |c| started.push(c))?;
/// assert_eq!(started, vec![0, 1, 2]);
/// assert!(compressed.energy.iter().all(|&e| e > 0.9999));
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn compress_with_progress(
    image: &ImageChannels,
    keep: Keep,
    mut on_channel: impl FnMut(usize),
) -> Result<CompressedImage> {
    let (height, width) = (image.height(), image.width());
    match keep {
        Keep::Rank(rank) => check_rank(rank, height, width)?,
        Keep::Energy(energy) => {
            // Rejects a bad threshold before the first SVD, with the spectrum module's own message.
            spectrum::rank_for_energy(ndarray::aview1(&[1.0]), energy)?;
        }
    }
    let n_channels = image.n_channels();
    let mut channels = Vec::with_capacity(n_channels);
    let mut ranks = Vec::with_capacity(n_channels);
    let mut energy = Vec::with_capacity(n_channels);
    let mut singular_values = Vec::with_capacity(n_channels);
    for (index, channel) in image.channels().iter().enumerate() {
        on_channel(index);
        let decomposition = svd::svd(channel.view())?;
        let rank = match keep {
            Keep::Rank(rank) => rank,
            Keep::Energy(threshold) => {
                spectrum::rank_for_energy(decomposition.s.view(), threshold)?
            }
        };
        channels.push(decomposition.truncate(rank)?.reconstruct());
        ranks.push(rank);
        energy.push(spectrum::energy_kept(decomposition.s.view(), rank));
        singular_values.push(decomposition.s);
    }
    let values_stored = ranks.iter().map(|rank| rank * (height + width + 1)).sum();
    let original_values = height * width * n_channels;
    Ok(CompressedImage {
        image: ImageChannels { channels },
        ranks,
        energy,
        values_stored,
        original_values,
        storage_ratio: original_values as f64 / values_stored as f64,
        singular_values,
    })
}

/// How many times fewer numbers rank-`rank` factors of a height×width channel hold:
/// `height·width / (rank·(height + width + 1))`. Below 1 the "compression" is larger than the image.
///
/// ```
/// use lowrank::image::storage_ratio;
/// assert_eq!(storage_ratio(512, 512, 10), 262_144.0 / 10_250.0);
/// assert!(storage_ratio(512, 512, 256) < 1.0);
/// ```
pub fn storage_ratio(height: usize, width: usize, rank: usize) -> f64 {
    (height * width) as f64 / (rank * (height + width + 1)) as f64
}

/// Peak signal-to-noise ratio in dB of `test` against `reference`, as 8-bit images:
/// `10·log10(255² / MSE)` over every pixel of every channel, after rounding both to 0..=255.
///
/// This is scikit-image's `peak_signal_noise_ratio(reference, test, data_range=255)`; identical images
/// give infinity. Around 30 dB a photograph looks fine; every 6 dB halves the RMS error.
///
/// ```
/// use lowrank::{image::{psnr, ImageChannels}, ndarray::array};
/// let reference = ImageChannels::from_channels(vec![array![[0.0, 10.0], [20.0, 30.0]]])?;
/// let test = ImageChannels::from_channels(vec![array![[0.0, 10.0], [20.0, 32.0]]])?; // MSE = 1
/// assert!((psnr(&reference, &test)? - 20.0 * 255.0_f64.log10()).abs() < 1e-12);
/// assert_eq!(psnr(&reference, &reference)?, f64::INFINITY);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn psnr(reference: &ImageChannels, test: &ImageChannels) -> Result<f64> {
    if reference.shape() != test.shape() {
        return Err(Error::ShapeMismatch {
            op: "psnr".into(),
            left: reference.shape(),
            right: test.shape(),
        });
    }
    let n_values = reference.shape().iter().product::<usize>();
    // Squared differences of 8-bit values are integers and their sum stays far below 2⁵³, so it is
    // exact in any order: the MSE is bit for bit the one NumPy computes.
    let squared_error: f64 = reference
        .channels()
        .iter()
        .zip(test.channels())
        .flat_map(|(a, b)| a.iter().zip(b.iter()))
        .map(|(&a, &b)| (f64::from(to_u8(a)) - f64::from(to_u8(b))).powi(2))
        .sum();
    if squared_error == 0.0 {
        return Ok(f64::INFINITY);
    }
    let mse = squared_error / n_values as f64;
    Ok(10.0 * (255.0_f64.powi(2) / mse).log10())
}

/// Draws the procedural sample `name` (one of [`SAMPLES`]) at width×height, as 8-bit RGB values.
///
/// The drawing scales with the shorter side, so a sample looks the same at any size.
///
/// ```
/// use lowrank::image::{compress_to_energy, sample, SAMPLES};
/// let board = sample("checkerboard", 64, 64)?;
/// // Hard edges, yet rank 2 per channel (the blue one is constant: rank 1).
/// assert_eq!(compress_to_energy(&board, 1.0)?.ranks, vec![2, 2, 1]);
/// assert!(sample("mona-lisa", 64, 64).unwrap_err().to_string().contains("rings"));
/// assert_eq!(SAMPLES.len(), 5);
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn sample(name: &str, width: usize, height: usize) -> Result<ImageChannels> {
    let draw: fn(f64, f64, Frame) -> [f64; 3] = match name {
        "gradient" => gradient,
        "checkerboard" => checkerboard,
        "stripes" => stripes,
        "plasma" => plasma,
        "rings" => rings,
        _ => {
            return Err(Error::UnknownSample {
                name: name.to_string(),
                known: SAMPLES.join(", "),
            });
        }
    };
    if width == 0 || height == 0 {
        return Err(Error::InvalidArgument {
            name: "sample size",
            value: format!("{width}x{height}"),
            reason: "width and height must be at least 1".into(),
        });
    }
    let frame = Frame { width, height };
    let pixels = Array2::from_shape_fn((height, width), |(i, j)| draw(j as f64, i as f64, frame));
    let channels = (0..3)
        .map(|c| pixels.mapv(|rgb| rgb[c].round().clamp(0.0, 255.0)))
        .collect();
    Ok(ImageChannels { channels })
}

#[derive(Clone, Copy)]
struct Frame {
    width: usize,
    height: usize,
}

impl Frame {
    /// The shorter side: the unit every sample is drawn in.
    fn unit(self) -> f64 {
        self.width.min(self.height) as f64
    }

    /// `x / (width − 1)` in [0, 1] (0 for a single column).
    fn fraction_x(self, x: f64) -> f64 {
        if self.width > 1 {
            x / (self.width - 1) as f64
        } else {
            0.0
        }
    }

    fn fraction_y(self, y: f64) -> f64 {
        if self.height > 1 {
            y / (self.height - 1) as f64
        } else {
            0.0
        }
    }
}

/// A cosine per channel, a third of a turn apart, mapped to 0..=255: `phase` becomes a hue.
fn palette(phase: f64) -> [f64; 3] {
    [0.0, 1.0, 2.0].map(|c| 127.5 + 127.5 * (phase + c * 2.0 * PI / 3.0).cos())
}

fn gradient(x: f64, y: f64, frame: Frame) -> [f64; 3] {
    let (u, v) = (frame.fraction_x(x), frame.fraction_y(y));
    [255.0 * u, 255.0 * v, 255.0 * (1.0 - u) * (1.0 - v)]
}

fn checkerboard(x: f64, y: f64, frame: Frame) -> [f64; 3] {
    let side = (frame.unit() / 8.0).floor().max(1.0);
    let dark = ((x / side).floor() + (y / side).floor()) % 2.0 == 1.0;
    if dark {
        [30.0, 200.0, 128.0]
    } else {
        [230.0, 60.0, 128.0]
    }
}

fn stripes(x: f64, y: f64, frame: Frame) -> [f64; 3] {
    palette(2.0 * PI * 6.0 * (x + y) / frame.unit())
}

fn plasma(x: f64, y: f64, frame: Frame) -> [f64; 3] {
    let (u, v) = (x / frame.unit(), y / frame.unit());
    let field = (8.0 * u).sin()
        + (7.0 * v + 1.0).sin()
        + (6.0 * (u + v)).sin()
        + (9.0 * (u - 0.7).hypot(v - 0.4)).sin();
    palette(PI * field / 2.0)
}

fn rings(x: f64, y: f64, frame: Frame) -> [f64; 3] {
    let centre_x = (frame.width as f64 - 1.0) / 2.0;
    let centre_y = (frame.height as f64 - 1.0) / 2.0;
    let radius = (x - centre_x).hypot(y - centre_y) / frame.unit();
    // Hard-edged bands: smooth rings need only about 10 triplets; curved edges are what costs rank.
    let band = (24.0 * radius).floor();
    palette(band * 2.0 * PI / 5.0)
}

fn to_u8(value: f64) -> u8 {
    // `as` saturates and maps NaN to 0; the clamp only makes the intent plain.
    value.round().clamp(0.0, 255.0) as u8
}

/// The format [`ImageChannels::save`] would write `path` in, from its extension: check an output path
/// before a long computation rather than after.
///
/// ```
/// use std::path::Path;
/// use lowrank::image::{output_format, ImageFormat};
/// assert_eq!(output_format(Path::new("out/photo.JPG"))?, ImageFormat::Jpeg);
/// let error = output_format(Path::new("photo.gif")).unwrap_err().to_string();
/// assert!(error.contains("photo.gif") && error.contains(".png"));
/// # Ok::<(), lowrank::Error>(())
/// ```
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    match ImageFormat::from_extension(&extension) {
        Some(format) if format.writing_enabled() => Ok(format),
        _ => Err(Error::UnsupportedImageFormat {
            path: path.to_path_buf(),
            extension,
            known: ImageFormat::all()
                .filter(|format| format.writing_enabled())
                .flat_map(|format| format.extensions_str())
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn temp_file_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".lowrank-");
    // tempfile creates 0600 files; ask for 0666 so the umask decides, as for any new file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"))
    }

    fn ok<T>(result: Result<T>) -> T {
        result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    #[test]
    fn missing_file_is_an_image_read_error_naming_the_path() {
        let path = temp_dir().path().join("absent.png");
        match load(&path) {
            Err(error @ Error::ImageRead { .. }) => {
                assert!(error.to_string().contains("absent.png"), "{error}");
            }
            other => panic!("expected ImageRead, got {other:?}"),
        }
    }

    #[test]
    fn a_non_image_file_is_an_image_read_error() {
        let dir = temp_dir();
        for name in ["notes.txt", "fake.png"] {
            let path = dir.path().join(name);
            ok(
                std::fs::write(&path, "not an image at all").map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                }),
            );
            match load(&path) {
                Err(error @ Error::ImageRead { .. }) => {
                    assert!(error.to_string().contains(name), "{error}");
                }
                other => panic!("expected ImageRead for {name}, got {other:?}"),
            }
        }
    }

    #[test]
    fn saving_to_an_unknown_extension_names_the_path_and_leaves_nothing() {
        let dir = temp_dir();
        let image = ok(sample("gradient", 8, 8));
        for name in ["out.bmp", "out.txt", "out"] {
            let path = dir.path().join(name);
            match image.save(&path) {
                Err(error @ Error::UnsupportedImageFormat { .. }) => {
                    let message = error.to_string();
                    assert!(
                        message.contains(name) && message.contains(".png"),
                        "{message}"
                    );
                }
                other => panic!("expected UnsupportedImageFormat for {name}, got {other:?}"),
            }
        }
        let left = std::fs::read_dir(dir.path()).map_or(0, |entries| entries.count());
        assert_eq!(left, 0, "a failed save left files behind");
    }

    #[test]
    fn save_replaces_an_existing_file_and_round_trips_png() {
        let dir = temp_dir();
        let path = dir.path().join("image.png");
        ok(sample("rings", 40, 30))
            .save(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let image = ok(sample("plasma", 40, 30));
        ok(image.save(&path));
        assert_eq!(ok(load(&path)), image);
        let files = std::fs::read_dir(dir.path()).map_or(0, |entries| entries.count());
        assert_eq!(files, 1, "the temp file was not renamed into place");
    }

    #[test]
    fn rank_zero_and_rank_above_the_smaller_side_are_out_of_range() {
        let image = ok(sample("stripes", 30, 20));
        for rank in [0, 21] {
            match compress(&image, rank) {
                Err(Error::RankOutOfRange { max: 20, .. }) => {}
                other => panic!("rank {rank}: expected RankOutOfRange, got {other:?}"),
            }
        }
        assert_eq!(ok(compress(&image, 20)).ranks, vec![20; 3]);
    }

    #[test]
    fn energy_outside_zero_one_is_invalid() {
        let image = ok(sample("stripes", 16, 16));
        for energy in [0.0, -0.5, 1.000_001, f64::NAN, f64::INFINITY] {
            match compress_to_energy(&image, energy) {
                Err(Error::InvalidArgument { name: "energy", .. }) => {}
                other => panic!("energy {energy}: expected InvalidArgument, got {other:?}"),
            }
        }
    }

    #[test]
    fn energy_picks_the_smallest_rank_reaching_the_threshold() {
        let image = ok(sample("plasma", 64, 48));
        let compressed = ok(compress_to_energy(&image, 0.95));
        for ((&rank, &energy), s) in compressed
            .ranks
            .iter()
            .zip(&compressed.energy)
            .zip(&compressed.singular_values)
        {
            assert!(energy >= 0.95);
            assert!(
                spectrum::energy_kept(s.view(), rank - 1) < 0.95,
                "rank {rank} is not the smallest"
            );
        }
        let whole = ok(compress_to_energy(&image, 1.0));
        assert!(whole.energy.iter().all(|&e| e == 1.0));
    }

    #[test]
    fn full_rank_reproduces_the_image_exactly() {
        for name in SAMPLES {
            let image = ok(sample(name, 37, 23));
            let compressed = ok(compress(&image, 23));
            assert_eq!(ok(psnr(&image, &compressed.image)), f64::INFINITY, "{name}");
        }
    }

    #[test]
    fn storage_ratio_counts_rank_times_height_plus_width_plus_one() {
        let image = ok(sample("rings", 60, 40));
        let compressed = ok(compress(&image, 7));
        assert_eq!(compressed.values_stored, 3 * 7 * (40 + 60 + 1));
        assert_eq!(compressed.original_values, 3 * 40 * 60);
        assert_eq!(compressed.storage_ratio, storage_ratio(40, 60, 7));
        assert_eq!(storage_ratio(40, 60, 7), 2400.0 / 707.0);
    }

    #[test]
    fn psnr_of_different_shapes_is_a_shape_mismatch() {
        let rgb = ok(sample("gradient", 10, 8));
        let wider = ok(sample("gradient", 11, 8));
        let grey = ok(ImageChannels::from_channels(vec![Array2::zeros((8, 10))]));
        for other in [&wider, &grey] {
            match psnr(&rgb, other) {
                Err(Error::ShapeMismatch { left, .. }) => assert_eq!(left, vec![8, 10, 3]),
                result => panic!("expected ShapeMismatch, got {result:?}"),
            }
        }
    }

    #[test]
    fn psnr_rounds_and_clamps_like_the_saved_file() {
        let reference = ok(ImageChannels::from_channels(vec![Array2::from_elem(
            (2, 2),
            255.0,
        )]));
        let test = ok(ImageChannels::from_channels(vec![Array2::from_elem(
            (2, 2),
            255.4 + 3.0,
        )]));
        assert_eq!(ok(psnr(&reference, &test)), f64::INFINITY);
        let off_by_one = ok(ImageChannels::from_channels(vec![Array2::from_elem(
            (2, 2),
            254.0,
        )]));
        assert!((ok(psnr(&reference, &off_by_one)) - 48.130_803_608_679_1).abs() < 1e-9);
    }

    #[test]
    fn grey_images_compress_and_save_as_one_channel() {
        let dir = temp_dir();
        let path = dir.path().join("grey.png");
        let grey = ok(ImageChannels::from_channels(vec![Array2::from_shape_fn(
            (20, 30),
            |(i, j)| ((i * 7 + j * 3) % 256) as f64,
        )]));
        ok(grey.save(&path));
        let loaded = ok(load(&path));
        assert_eq!(loaded.n_channels(), 1);
        assert_eq!(loaded, grey);
        let compressed = ok(compress(&loaded, 2));
        assert_eq!(compressed.ranks, vec![2]);
        assert_eq!(compressed.values_stored, 2 * (20 + 30 + 1));
    }

    #[test]
    fn png_with_alpha_loads_as_rgb() {
        let dir = temp_dir();
        let path = dir.path().join("alpha.png");
        let rgba = ::image::RgbaImage::from_fn(5, 4, |x, y| {
            ::image::Rgba([x as u8 * 50, y as u8 * 60, 7, 100])
        });
        ok(rgba.save(&path).map_err(|source| Error::ImageWrite {
            path: path.clone(),
            source,
        }));
        let loaded = ok(load(&path));
        assert_eq!(loaded.shape(), vec![4, 5, 3]);
        assert_eq!(loaded.channels()[0][[3, 4]], 200.0);
        assert_eq!(loaded.channels()[1][[3, 4]], 180.0);
        assert_eq!(loaded.channels()[2][[3, 4]], 7.0);
        assert_eq!(ok(compress(&loaded, 4)).ranks, vec![4; 3]);
    }

    #[test]
    fn jpeg_saves_and_loads_close_to_the_original() {
        let dir = temp_dir();
        let path = dir.path().join("plasma.jpg");
        let image = ok(sample("plasma", 64, 64));
        ok(image.save(&path));
        let loaded = ok(load(&path));
        assert_eq!(loaded.shape(), image.shape());
        assert!(ok(psnr(&image, &loaded)) > 25.0);
    }

    #[test]
    fn samples_are_deterministic_8_bit_and_unknown_names_list_the_known() {
        for name in SAMPLES {
            let image = ok(sample(name, 33, 17));
            assert_eq!(image, ok(sample(name, 33, 17)));
            assert_eq!(image.shape(), vec![17, 33, 3]);
            for value in image.channels().iter().flat_map(|c| c.iter()) {
                assert!(
                    (0.0..=255.0).contains(value) && value.fract() == 0.0,
                    "{name}: {value}"
                );
            }
        }
        match sample("nope", 8, 8) {
            Err(error @ Error::UnknownSample { .. }) => {
                assert!(SAMPLES.iter().all(|name| error.to_string().contains(name)));
            }
            other => panic!("expected UnknownSample, got {other:?}"),
        }
        assert!(matches!(
            sample("rings", 0, 8),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn sample_ranks_match_what_their_docs_teach() {
        let energy_rank =
            |name: &str| ok(compress_to_energy(&ok(sample(name, 128, 128)), 0.999)).ranks;
        assert_eq!(energy_rank("gradient"), vec![1, 1, 1]);
        assert_eq!(energy_rank("checkerboard"), vec![2, 2, 1]);
        assert!(energy_rank("stripes").iter().all(|&rank| rank <= 3));
        let rings = energy_rank("rings");
        let plasma = energy_rank("plasma");
        assert!(
            rings.iter().zip(&plasma).all(|(r, p)| r > p),
            "rings {rings:?} plasma {plasma:?}"
        );
    }
}
