//! Draws the book's figures with the library, at book-build time (`cargo xtask book`), so no figure
//! is a committed image and every one shows what the current code computes.
//!
//! usage: cargo run --release -p lab --example book_figures -- OUT_DIR

use std::path::{Path, PathBuf};

use lab::{gaussian_matrix, gaussian_tensor, image, matrices, tucker};

fn main() -> lab::LessonResult<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: book_figures OUT_DIR")?,
    );
    std::fs::create_dir_all(&out)?;
    flops_against_rank(&out)?;
    image_at_ranks(&out)?;
    hooi_trace(&out)?;
    lab::neural_networks::figures(&out)?;
    lab::attention::figures(&out)?;
    lab::transformer::figures(&out)?;
    lab::decoding::figures(&out)?;
    lab::lora::figures(&out)?;
    lab::compressing_bart::figures(&out)?;
    lab::design_space::figures(&out)?;
    lab::chatbot::figures(&out)?;
    println!("figures written to {}", out.display());
    Ok(())
}

fn flops_against_rank(out: &Path) -> lab::LessonResult<()> {
    let (b, n, p) = (128, 768, 768);
    let ranks: Vec<f64> = (1..=12).map(|i| (i * 64) as f64).collect();
    let factorized: Vec<f64> = ranks
        .iter()
        .map(|&r| matrices::factorized_flops(b, n, r as usize, p) as f64 / 1e6)
        .collect();
    let dense = vec![matrices::matmul_flops(b, n, p) as f64 / 1e6; ranks.len()];
    viz::Plot::new("x·W against x·U·V: 128 tokens, a 768x768 layer")
        .x_label("rank r")
        .y_label("MFLOPs")
        .line("dense x·W", &ranks, &dense)
        .line("factorized x·U·V", &ranks, &factorized)
        .save(out.join("01-flops-rank.svg"))?;
    Ok(())
}

fn image_at_ranks(out: &Path) -> lab::LessonResult<()> {
    let original = image::sample("rings", 256, 256)?;
    let mut grid = viz::ImageGrid::new("The rings sample at ranks 5, 20 and 50")
        .image("original", original.to_image());
    for k in [5, 20, 50] {
        let compressed = image::compress(&original, k)?;
        let psnr = image::psnr(&original, &compressed.image)?;
        grid = grid.image(
            format!("rank {k}: {psnr:.1} dB"),
            compressed.image.to_image(),
        );
    }
    grid.save(out.join("02-rings-ranks.png"))?;
    let spectrum = image::compress(&original, 1)?.singular_values[0].to_vec();
    viz::Spectrum::new(
        "Singular values of the rings sample (red channel)",
        &spectrum,
    )
    .mark_rank(20)
    .save(out.join("02-rings-spectrum.svg"))?;
    Ok(())
}

fn hooi_trace(out: &Path) -> lab::LessonResult<()> {
    let core = gaussian_tensor(&[4, 4, 4], 1);
    let factors: Vec<_> = (0..3)
        .map(|mode| gaussian_matrix(30, 4, 10 + mode))
        .collect();
    let views: Vec<_> = factors.iter().map(|f| f.view()).collect();
    let noisy =
        tucker::multi_mode_product(core.view(), &views)? + gaussian_tensor(&[30, 30, 30], 2) * 2.0;
    let (_, trace) = tucker::hooi(
        noisy.view(),
        &[4, 4, 4],
        &tucker::Hooi {
            max_iterations: 50,
            tolerance: 1e-10,
        },
    )?;
    let iterations: Vec<f64> = (0..=trace.iterations()).map(|i| i as f64).collect();
    let mut errors = vec![trace.initial_relative_error];
    errors.extend(&trace.relative_errors);
    viz::Plot::new("HOOI from its HOSVD start")
        .x_label("iteration (0 = HOSVD)")
        .y_label("relative error")
        .line("HOOI, ranks (4, 4, 4)", &iterations, &errors)
        .save(out.join("03-hooi-trace.svg"))?;
    Ok(())
}
