//! Writes one of each chart as SVG and PNG into a folder, to look at:
//! `cargo run -p viz --example gallery -- out/gallery`.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use viz::ndarray::Array2;

fn main() -> Result<(), viz::Error> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "out/gallery".into()),
    );
    std::fs::create_dir_all(&dir).map_err(|source| viz::Error::Io {
        path: dir.clone(),
        source,
    })?;

    let ranks: Vec<f64> = (1..=60).map(f64::from).collect();
    let photo: Vec<f64> = ranks.iter().map(|k| 0.8 * k.powf(-0.9)).collect();
    let noise: Vec<f64> = ranks.iter().map(|k| 0.9 - 0.01 * k).collect();
    let plot = viz::Plot::new("Relative error of the rank-k approximation")
        .x_label("rank k")
        .y_label("‖A − A_k‖ / ‖A‖")
        .line("photograph", &ranks, &photo)
        .line("random matrix", &ranks, &noise)
        .scatter("measured", &[5.0, 20.0, 50.0], &[0.19, 0.055, 0.023])
        .log_y();
    save_both(&dir, "plot", |p| plot.save(p))?;

    let bars = viz::BarChart::new("Parameters of one 768×768 projection")
        .y_label("thousands")
        .bars(
            &["dense", "rank 256", "rank 64", "rank 16"],
            &[589.8, 393.2, 98.3, 24.6],
        );
    save_both(&dir, "bar", |p| bars.save(p))?;

    let tokens = ["The", "cat", "sat", "on", "the", "mat"];
    let attention = Array2::from_shape_fn((6, 6), |(i, j)| {
        if j > i {
            0.0
        } else {
            let weight = |j: usize| (-((i - j) as f64) / 2.0).exp();
            weight(j) / (0..=i).map(weight).sum::<f64>()
        }
    });
    let heatmap = viz::Heatmap::new("Causal attention, head 0", attention.view())
        .x_label("key")
        .y_label("query")
        .row_labels(&tokens)
        .col_labels(&tokens)
        .range(0.0, 1.0);
    save_both(&dir, "heatmap", |p| heatmap.save(p))?;

    let weights = Array2::from_shape_fn((96, 128), |(i, j)| {
        ((i as f64) / 9.0).sin() * ((j as f64) / 13.0).cos() + 0.3 * ((i * j) as f64 / 50.0).sin()
    });
    let signed = viz::Heatmap::new("A weight matrix", weights.view())
        .colormap(viz::Colormap::Diverging)
        .x_label("input")
        .y_label("output");
    save_both(&dir, "heatmap_diverging", |p| signed.save(p))?;

    let s: Vec<f64> = (0..100)
        .map(|i| 50.0 * (-(i as f64) / 8.0).exp() + 0.5 / (1.0 + i as f64))
        .collect();
    let spectrum = viz::Spectrum::new("Spectrum of a 100×100 matrix", &s).mark_rank(20);
    save_both(&dir, "spectrum", |p| spectrum.save(p))?;

    let original = rings(192, 128);
    let grid = viz::ImageGrid::new("Original and blurred stand-ins for rank 5, 20, 50")
        .image("original", original.clone())
        .image("rank 5", box_blur(&original, 12))
        .image("rank 20", box_blur(&original, 4))
        .image("rank 50", box_blur(&original, 1));
    save_both(&dir, "grid", |p| grid.save(p))?;

    let mut table = viz::Table::new(["rank", "storage ratio", "PSNR (dB)"]);
    for (rank, psnr) in [(5, 18.234), (20, 23.91), (50, 28.4)] {
        table.row((rank, 512.0 * 512.0 / (rank as f64 * 1025.0), psnr))?;
    }
    println!("{table}");
    println!("wrote {}", dir.display());
    Ok(())
}

fn save_both(
    dir: &Path,
    name: &str,
    save: impl Fn(PathBuf) -> Result<(), viz::Error>,
) -> Result<(), viz::Error> {
    save(dir.join(format!("{name}.svg")))?;
    save(dir.join(format!("{name}.png")))
}

/// Concentric coloured rings, a high-rank test picture.
fn rings(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let dx = f64::from(x) - f64::from(width) / 2.0;
        let dy = f64::from(y) - f64::from(height) / 2.0;
        let r = (dx * dx + dy * dy).sqrt() / 6.0;
        let channel = |phase: f64| (127.5 + 127.5 * (r + phase).sin()) as u8;
        Rgb([channel(0.0), channel(2.1), channel(4.2)])
    })
}

fn box_blur(image: &RgbImage, radius: i64) -> RgbImage {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let mut sum = [0u32; 3];
        let mut count = 0;
        for yy in (i64::from(y) - radius).max(0)..=(i64::from(y) + radius).min(h - 1) {
            for xx in (i64::from(x) - radius).max(0)..=(i64::from(x) + radius).min(w - 1) {
                let p = image.get_pixel(xx as u32, yy as u32).0;
                for c in 0..3 {
                    sum[c] += u32::from(p[c]);
                }
                count += 1;
            }
        }
        Rgb(sum.map(|s| (s / count) as u8))
    })
}
