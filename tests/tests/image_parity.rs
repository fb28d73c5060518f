//! PSNR against scikit-image: `lowrank::image::psnr` must equal
//! `skimage.metrics.peak_signal_noise_ratio(true, test, data_range=255)` computed by
//! `tests/reference/psnr.py` on the files Lowrank saved, for procedural samples, the photographs that
//! `cargo xtask venv` caches, a grey image and a JPEG round trip.
//!
//! Both sides sum integer squared errors exactly, so on the same pixels only the last bit of a logarithm
//! can differ: the tolerance is 1e-9 relative. JPEG decoders are another matter (ours is zune-jpeg,
//! scikit-image reads through Pillow's libjpeg-turbo): their pixels may differ by a level or two, so the
//! JPEG test checks the PSNR on scikit-image's decoded pixels and bounds the decoders' disagreement.

use std::path::{Path, PathBuf};

use lowrank::image::{ImageChannels, compress, load, psnr, sample};
use ndarray::{Array3, Axis};
use parity::{cache_dir, number, reference};

const RELATIVE_TOLERANCE: f64 = 1e-9;

fn ok<T>(what: &str, result: lowrank::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"))
}

/// A photograph `cargo xtask venv` copied out of scikit-image into the cache.
fn photo(name: &str) -> PathBuf {
    let path = cache_dir().join("samples").join(format!("{name}.png"));
    assert!(
        path.exists(),
        "the sample photograph {} is missing: run `cargo xtask venv` once",
        path.display()
    );
    path
}

/// JPEG decoders may round a pixel differently; past these bounds one of them decodes wrongly.
const MAX_DECODER_DIFFERENCE: f64 = 4.0;
const MAX_DECODER_PSNR_GAP_DB: f64 = 0.01;

fn assert_same_psnr(what: &str, ours: f64, result: &serde_json::Value) {
    let theirs = number(result, "psnr");
    let difference = (ours - theirs).abs();
    assert!(
        difference <= RELATIVE_TOLERANCE * theirs.abs(),
        "psnr of {what}: ours {ours} dB, scikit-image {} {theirs} dB, difference {difference:e}",
        result["skimage_version"],
    );
    eprintln!("{what}: {ours:.4} dB, |ours - scikit-image| = {difference:e} dB");
}

/// Compresses `original` (stored at `path`) to each rank, saves it as PNG and checks our PSNR against
/// scikit-image's on the two files. Every rank must leave some error: identical images have no finite
/// PSNR to compare.
fn check(path: &Path, original: &ImageChannels, ranks: &[usize]) {
    let dir = temp_dir();
    for &rank in ranks {
        let compressed = ok("compress", compress(original, rank));
        let out = dir.path().join(format!("rank_{rank}.png"));
        ok("save", compressed.image.save(&out));
        let ours = ok("psnr", psnr(original, &compressed.image));
        let what = format!("{} at rank {rank}", path.display());
        assert_same_psnr(&what, ours, &reference("psnr.py", [path, &out]));
        eprintln!("{what}: storage ratio {:.3}", compressed.storage_ratio);
    }
}

#[test]
fn samples_at_several_ranks() {
    let dir = temp_dir();
    for (name, ranks) in [("rings", [1, 5, 20, 40]), ("plasma", [1, 3, 5, 8])] {
        let original = ok("sample", sample(name, 160, 120));
        let path = dir.path().join(format!("{name}.png"));
        ok("save", original.save(&path));
        check(&path, &original, &ranks);
    }
}

#[test]
fn astronaut_photograph() {
    let path = photo("astronaut");
    let original = ok("load", load(&path));
    assert_eq!(original.shape(), vec![512, 512, 3]);
    check(&path, &original, &[10, 50]);
}

#[test]
fn coffee_photograph_is_not_square() {
    let path = photo("coffee");
    let original = ok("load", load(&path));
    assert_eq!(original.shape(), vec![400, 600, 3]);
    check(&path, &original, &[20]);
}

#[test]
fn grey_image() {
    let dir = temp_dir();
    let astronaut = ok("load", load(&photo("astronaut")));
    let red = astronaut.channels()[0].clone();
    let grey = ok("grey", ImageChannels::from_channels(vec![red]));
    let path = dir.path().join("grey.png");
    ok("save", grey.save(&path));
    check(&path, &grey, &[10]);
}

#[test]
fn jpeg_round_trip() {
    let dir = temp_dir();
    let path = photo("astronaut");
    let original = ok("load", load(&path));
    for rank in [10, 50] {
        let jpeg = dir.path().join(format!("rank_{rank}.jpg"));
        ok(
            "save",
            ok("compress", compress(&original, rank)).image.save(&jpeg),
        );
        let decoded = dir.path().join(format!("rank_{rank}.npy"));
        let result = reference("psnr.py", [&path, &jpeg, &decoded]);
        let pixels: Array3<u8> = parity::load(&decoded);
        let theirs = ok(
            "channels",
            ImageChannels::from_channels(
                pixels
                    .axis_iter(Axis(2))
                    .map(|c| c.mapv(f64::from))
                    .collect(),
            ),
        );
        let what = format!("{} at rank {rank}, as JPEG", path.display());
        assert_same_psnr(&what, ok("psnr", psnr(&original, &theirs)), &result);

        let ours = ok("load", load(&jpeg));
        let decoders_differ = ours
            .channels()
            .iter()
            .zip(theirs.channels())
            .flat_map(|(a, b)| a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()))
            .fold(0.0_f64, f64::max);
        let gap = ok("psnr", psnr(&original, &ours)) - number(&result, "psnr");
        assert!(
            decoders_differ <= MAX_DECODER_DIFFERENCE && gap.abs() <= MAX_DECODER_PSNR_GAP_DB,
            "{what}: our decoder and scikit-image's differ by up to {decoders_differ} levels, \
             {gap:e} dB of PSNR (bounds {MAX_DECODER_DIFFERENCE}, {MAX_DECODER_PSNR_GAP_DB} dB)"
        );
    }
}
