//! Tests of the public API across the chart types: what SVG and PNG outputs contain, how bad input
//! fails, how files are saved, and the evcxr display blocks.

use std::path::{Path, PathBuf};

use ::image::{Rgb, RgbImage};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ndarray::{Array2, array};

use crate::*;

fn ok<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
}

fn error_text<T: std::fmt::Debug>(result: Result<T>) -> String {
    result.expect_err("expected an error").to_string()
}

fn decode_png(bytes: &[u8]) -> RgbImage {
    ::image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("not a PNG: {e}"))
        .to_rgb8()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The first PNG an SVG embeds as a data URI.
fn first_embedded_png(svg: &str) -> RgbImage {
    let start = svg.find("data:image/png;base64,").expect("an embedded PNG") + 22;
    let end = start + svg[start..].find('"').unwrap();
    decode_png(&BASE64.decode(&svg[start..end]).unwrap())
}

fn is_dark(pixel: &Rgb<u8>) -> bool {
    pixel.0.iter().all(|c| *c < 90)
}

fn sample_plot(title: &str) -> Plot {
    Plot::new(title)
        .x_label("rank k")
        .y_label("relative error")
        .line("photograph", &[1.0, 2.0, 3.0], &[0.5, 0.2, 0.1])
        .scatter("random matrix", &[1.0, 2.0, 3.0], &[0.9, 0.8, 0.7])
}

fn grey_square(value: u8) -> RgbImage {
    RgbImage::from_pixel(40, 40, Rgb([value; 3]))
}

/// A chart's title, outputs and requested size.
type Rendered = (&'static str, Result<String>, Result<Vec<u8>>, (u32, u32));

/// One chart of each type.
fn every_chart() -> Vec<Rendered> {
    let plot = sample_plot("a plot").size(500, 300);
    let bars = BarChart::new("a bar chart").bars(&["a", "b"], &[1.0, -2.0]);
    let heatmap = Heatmap::new("a heatmap", array![[0.0, 1.0], [2.0, 3.0]].view());
    let spectrum = Spectrum::new("a spectrum", &[4.0, 2.0, 1.0]).mark_rank(2);
    let grid = ImageGrid::new("an image grid")
        .image("dark", grey_square(30))
        .image("light", grey_square(220))
        .size(420, 260);
    vec![
        ("a plot", plot.to_svg(), plot.to_png(), (500, 300)),
        ("a bar chart", bars.to_svg(), bars.to_png(), (640, 400)),
        ("a heatmap", heatmap.to_svg(), heatmap.to_png(), (560, 480)),
        (
            "a spectrum",
            spectrum.to_svg(),
            spectrum.to_png(),
            (800, 360),
        ),
        ("an image grid", grid.to_svg(), grid.to_png(), (420, 260)),
    ]
}

#[test]
fn every_chart_renders_an_svg_with_its_title_and_a_png_of_its_size_with_text_on_white() {
    for (title, svg, png, (width, height)) in every_chart() {
        let svg = ok(svg);
        assert!(
            svg.starts_with(&format!(r#"<svg width="{width}" height="{height}""#)),
            "{title}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{title}");
        assert!(
            svg.contains(&format!(">\n{title}\n</text>")),
            "{title} is not an SVG text"
        );

        let png = decode_png(&ok(png));
        assert_eq!(png.dimensions(), (width, height), "{title}");
        let n_pixels = (width * height) as usize;
        let white = png.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let dark = png.pixels().filter(|p| is_dark(p)).count();
        assert!(
            white > n_pixels / 4,
            "{title}: {white} white pixels of {n_pixels}"
        );
        assert!(
            dark > 100,
            "{title}: only {dark} dark pixels, so no text or axes"
        );
    }
}

#[test]
fn plot_svg_names_title_axes_and_every_series() {
    let svg = ok(sample_plot("Reconstruction error").to_svg());
    for label in [
        "Reconstruction error",
        "rank k",
        "relative error",
        "photograph",
        "random matrix",
    ] {
        assert!(svg.contains(&format!("\n{label}\n")), "{label} is missing");
    }
}

#[test]
fn png_titles_are_drawn_with_the_bundled_font() {
    // The strip above the plot, away from the axes, holds only the title.
    let title_strip_dark_pixels = |title: &str| {
        let png = decode_png(&ok(sample_plot(title).size(500, 300).to_png()));
        (0..36)
            .flat_map(|y| (100..400).map(move |x| (x, y)))
            .filter(|(x, y)| is_dark(png.get_pixel(*x, *y)))
            .count()
    };
    assert_eq!(title_strip_dark_pixels(""), 0);
    let dark = title_strip_dark_pixels("Reconstruction error");
    assert!(dark > 150, "only {dark} dark pixels in the title strip");
    // Glyphs differ: a wider title inks more pixels.
    assert!(
        title_strip_dark_pixels("WWWWWWWWWWWWWWWW") > title_strip_dark_pixels("iiiiiiiiiiiiiiii")
    );
}

#[test]
fn svg_escapes_labels() {
    let svg = ok(Plot::new("a < b & c")
        .line("x > 0", &[1.0], &[1.0])
        .to_svg());
    assert!(svg.contains("a &lt; b &amp; c") && svg.contains("x &gt; 0"));
    assert!(!svg.contains("a < b"));
}

#[test]
fn log_y_labels_powers_of_ten() {
    let svg = ok(Plot::new("log")
        .line("s", &[1.0, 2.0, 3.0], &[10.0, 0.1, 0.001])
        .log_y()
        .to_svg());
    for tick in ["0.001", "0.01", "0.1", "1", "10"] {
        assert!(
            svg.contains(&format!(">\n{tick}\n</text>")),
            "tick {tick} is missing"
        );
    }
}

#[test]
fn heatmap_cells_take_the_colours_of_their_values_row_zero_on_top() {
    let colour = |t: f64| Colormap::Viridis.colour(t);
    let heatmap = Heatmap::new("h", array![[0.0, 1.0], [2.0, 3.0]].view());

    // SVG: the cells travel as one PNG, a block of identical pixels per cell.
    let cells = first_embedded_png(&ok(heatmap.to_svg()));
    let (width, height) = cells.dimensions();
    assert_eq!((width % 2, height % 2), (0, 0));
    assert_eq!(cells.get_pixel(0, 0).0, colour(0.0));
    assert_eq!(cells.get_pixel(width - 1, 0).0, colour(1.0 / 3.0));
    assert_eq!(cells.get_pixel(0, height - 1).0, colour(2.0 / 3.0));
    assert_eq!(cells.get_pixel(width - 1, height - 1).0, colour(1.0));

    // PNG: both end colours fill whole cells (and the ends of the colour bar).
    let png = decode_png(&ok(heatmap.to_png()));
    let count = |rgb: [u8; 3]| png.pixels().filter(|p| p.0 == rgb).count();
    assert!(count(colour(0.0)) > 10_000 && count(colour(1.0)) > 10_000);
    let cells_only = ::image::imageops::crop_imm(&png, 0, 0, 460, 480).to_image();
    let (x_low, y_low) = position_of(&cells_only, colour(0.0));
    let (x_high, y_high) = position_of(&cells_only, colour(1.0));
    assert!(
        x_low < x_high && y_low < y_high,
        "the lowest cell is top left, the highest bottom right"
    );

    // A fixed range clamps values beyond it to the end colours.
    let clamped = first_embedded_png(&ok(heatmap.clone().range(1.0, 2.0).to_svg()));
    assert_eq!(clamped.get_pixel(0, 0).0, colour(0.0));
    assert_eq!(clamped.get_pixel(width - 1, height - 1).0, colour(1.0));

    // Diverging: zero is white, the largest magnitude sets both ends.
    let signed = Heatmap::new("w", array![[-2.0, 0.0, 1.0]].view()).colormap(Colormap::Diverging);
    let cells = first_embedded_png(&ok(signed.to_svg()));
    let third = cells.width() / 3;
    assert_eq!(cells.get_pixel(0, 0).0, Colormap::Diverging.colour(0.0));
    assert_eq!(cells.get_pixel(third + 1, 0).0, [247, 247, 247]);
    assert_eq!(
        cells.get_pixel(2 * third + 1, 0).0,
        Colormap::Diverging.colour(0.75)
    );
}

/// The first pixel (row by row) of a colour (the colour bar, right of x = 460, left out).
fn position_of(image: &RgbImage, rgb: [u8; 3]) -> (u32, u32) {
    image
        .enumerate_pixels()
        .find(|(_, _, p)| p.0 == rgb)
        .map(|(x, y, _)| (x, y))
        .expect("colour present")
}

#[test]
fn rasters_lie_under_axes_and_text_in_svg() {
    let svg = ok(Heatmap::new("h", Array2::eye(3).view()).to_svg());
    let first = |needle: &str| svg.find(needle).unwrap_or_else(|| panic!("no {needle}"));
    assert!(first("<image") < first("<text"));
    assert!(first("<image") < first("<polyline"));
}

#[test]
fn large_matrices_embed_one_pixel_per_cell() {
    let matrix = Array2::from_shape_fn((300, 500), |(i, j)| (i * j) as f64);
    let svg = ok(Heatmap::new("big", matrix.view()).to_svg());
    assert_eq!(first_embedded_png(&svg).dimensions(), (500, 300));
    assert!(svg.len() < 600_000, "the SVG holds {} bytes", svg.len());
}

#[test]
fn image_grid_shows_each_image_and_caption() {
    let grid = ImageGrid::new("grid")
        .image("red", RgbImage::from_pixel(30, 20, Rgb([255, 0, 0])))
        .image("blue", RgbImage::from_pixel(30, 20, Rgb([0, 0, 255])));
    let png = decode_png(&ok(grid.to_png()));
    let count = |rgb: [u8; 3]| png.pixels().filter(|p| p.0 == rgb).count();
    // Enlarged from 30x20 to the default panel of 128 pixels wide (aspect kept): 128x85.
    assert!(count([255, 0, 0]) > 128 * 80 && count([0, 0, 255]) > 128 * 80);
    let svg = ok(grid.to_svg());
    assert_eq!(svg.matches("<image ").count(), 2);
    assert!(svg.contains("\nred\n") && svg.contains("\nblue\n"));
}

#[test]
fn bad_input_is_an_error_naming_the_culprit() {
    let cases: Vec<(Result<String>, &str)> = vec![
        (Plot::new("p").to_svg(), r#"plot "p" is empty"#),
        (
            Plot::new("p").line("a", &[], &[]).to_svg(),
            r#"series "a", x values is empty"#,
        ),
        (
            Plot::new("p").line("a", &[1.0, 2.0], &[1.0]).to_svg(),
            r#"series "a" has 2 x values but 1 y values"#,
        ),
        (
            Plot::new("p")
                .scatter("a", &[1.0, 2.0], &[1.0, f64::NAN])
                .to_svg(),
            r#"series "a", y values holds the non-finite value NaN at index 1"#,
        ),
        (
            Plot::new("p")
                .line("a", &[1.0, 2.0], &[1.0, 0.0])
                .log_y()
                .to_svg(),
            r#"series "a", y values holds 0 at index 1: a log scale shows only positive values"#,
        ),
        (
            Plot::new("p")
                .line("a", &[1.0, 2.0], &[1.0, 1e308])
                .to_svg(),
            r#"series "a", y values holds 100000000"#,
        ),
        (
            sample_plot("p").size(10, 5000).to_svg(),
            "size 10x5000 is out of range: width and height must be within 160..=4096",
        ),
        (BarChart::new("b").to_svg(), r#"bar chart "b" is empty"#),
        (
            BarChart::new("b").bars(&["x"], &[1.0, 2.0]).to_svg(),
            r#"bar chart "b" has 1 labels but 2 values"#,
        ),
        (
            Heatmap::new("h", Array2::zeros((0, 3)).view()).to_svg(),
            r#"heatmap "h" is empty"#,
        ),
        (
            Heatmap::new("h", array![[1.0, 2.0], [3.0, f64::INFINITY]].view()).to_svg(),
            r#"heatmap "h", row 1 holds the non-finite value inf at index 1"#,
        ),
        (
            Heatmap::new("h", array![[1.0, 2.0]].view())
                .col_labels(&["a"])
                .to_svg(),
            r#"heatmap "h" has 1 column labels but 2 columns"#,
        ),
        (
            Heatmap::new("h", array![[1.0, 2.0]].view())
                .range(1.0, 1.0)
                .to_svg(),
            "range = 1..1 is invalid: the low end must be below the high end",
        ),
        (
            Spectrum::new("s", &[]).to_svg(),
            r#"spectrum "s", singular values is empty"#,
        ),
        (
            Spectrum::new("s", &[2.0, -1.0]).to_svg(),
            r#"spectrum "s", singular values holds -1 at index 1: singular values are never negative"#,
        ),
        (
            Spectrum::new("s", &[0.0, 0.0]).to_svg(),
            "singular values = all zero is invalid",
        ),
        (
            Spectrum::new("s", &[2.0, 1.0]).mark_rank(3).to_svg(),
            "mark_rank = 3 is invalid: choose a rank in 1..=2",
        ),
        (ImageGrid::new("g").to_svg(), r#"image grid "g" is empty"#),
        (
            ImageGrid::new("g")
                .image("a", grey_square(0))
                .columns(0)
                .to_svg(),
            "columns = 0 is invalid",
        ),
        (
            ImageGrid::new("g").image("a", RgbImage::new(0, 5)).to_svg(),
            r#"image "a" in image grid "g" is empty"#,
        ),
    ];
    for (result, expected) in cases {
        let message = error_text(result);
        assert!(
            message.starts_with(expected),
            "{message:?} does not start with {expected:?}"
        );
    }
}

#[test]
fn bad_input_fails_the_same_way_for_png() {
    let message = error_text(Plot::new("p").line("a", &[1.0, 2.0], &[1.0]).to_png());
    assert_eq!(message, r#"series "a" has 2 x values but 1 y values"#);
}

#[test]
fn images_reject_bad_buffers_and_bytes() {
    assert_eq!(
        error_text(Image::from_rgb8(2, 2, vec![0; 11])),
        "a 2x2 RGB image has 11 bytes but 12 expected (3 per pixel)"
    );
    assert!(error_text(Image::decode(b"not an image")).starts_with("cannot decode an image"));
    assert_eq!(
        error_text(Image::from(RgbImage::new(0, 0)).to_png()),
        "a 0x0 image is empty"
    );
}

#[test]
fn save_writes_svg_or_png_by_extension_and_leaves_no_temporary_files() {
    let dir = temp_dir();
    let plot = sample_plot("saved");
    ok(plot.save(dir.path().join("plot.svg")));
    ok(plot.save(dir.path().join("plot.PNG")));
    let svg = std::fs::read_to_string(dir.path().join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("saved"));
    let png = std::fs::read(dir.path().join("plot.PNG")).unwrap();
    assert_eq!(decode_png(&png).dimensions(), (640, 400));
    assert_eq!(files_in(dir.path()), ["plot.PNG", "plot.svg"]);
}

#[test]
fn save_replaces_an_old_file_and_a_failed_save_leaves_it_whole() {
    let dir = temp_dir();
    let path = dir.path().join("chart.svg");
    std::fs::write(&path, "old").unwrap();
    ok(sample_plot("new").save(&path));
    let saved = std::fs::read_to_string(&path).unwrap();
    assert!(saved.contains("new"));

    let bad = Plot::new("bad").line("a", &[1.0], &[f64::NAN]);
    assert!(bad.save(&path).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved);
    assert_eq!(files_in(dir.path()), ["chart.svg"]);
}

#[test]
fn unknown_extensions_are_refused_before_anything_is_written() {
    let dir = temp_dir();
    let plot = sample_plot("p");
    for name in ["chart.jpg", "chart", "chart.svg.tmp"] {
        let path = dir.path().join(name);
        let message = error_text(plot.save(&path));
        assert!(
            message.contains(&path.display().to_string())
                && message.ends_with("must be one of .svg, .png"),
            "{message}"
        );
    }
    let image = Image::from(grey_square(9));
    assert!(error_text(image.save(dir.path().join("i.svg"))).ends_with("must be one of .png"));
    let figure = ok(figure((200, 200), |_| Ok(())));
    assert!(error_text(figure.save(dir.path().join("f.png"))).ends_with("must be one of .svg"));
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn saving_into_a_missing_folder_is_an_io_error_naming_the_path() {
    let dir = temp_dir();
    let path: PathBuf = dir.path().join("missing").join("chart.png");
    let message = error_text(sample_plot("p").save(&path));
    assert!(
        message.starts_with(&format!("cannot write {}", path.display())),
        "{message}"
    );
}

#[test]
fn images_save_as_png_and_round_trip() {
    let dir = temp_dir();
    let path = dir.path().join("image.png");
    let image = Image::from(RgbImage::from_fn(7, 5, |x, y| {
        Rgb([x as u8 * 30, y as u8 * 50, 7])
    }));
    ok(image.save(&path));
    let loaded = ok(Image::decode(&std::fs::read(&path).unwrap()));
    assert_eq!(loaded.as_dynamic().to_rgb8(), image.as_dynamic().to_rgb8());
}

/// Checks one evcxr block: the header line, the payload, the closing line, nothing else.
fn payload<'a>(block: &'a str, mime: &str) -> &'a str {
    let header = format!("EVCXR_BEGIN_CONTENT {mime}\n");
    assert!(block.starts_with(&header), "{block:.80}");
    assert!(block.ends_with("\nEVCXR_END_CONTENT\n"), "{block:.80}");
    assert_eq!(block.matches("EVCXR_BEGIN_CONTENT").count(), 1);
    assert_eq!(block.matches("EVCXR_END_CONTENT").count(), 1);
    &block[header.len()..block.len() - "\nEVCXR_END_CONTENT\n".len()]
}

#[test]
fn display_blocks_carry_svg_for_charts_png_for_images_and_html_for_tables() {
    let plot = sample_plot("shown");
    let block = ok(plot.display_block());
    assert_eq!(
        payload(&block, "image/svg+xml"),
        ok(plot.to_svg()).trim_end()
    );
    for block in [
        ok(BarChart::new("b").bar("a", 1.0).display_block()),
        ok(Heatmap::new("h", Array2::eye(2).view()).display_block()),
        ok(Spectrum::new("s", &[1.0]).display_block()),
        ok(ImageGrid::new("g")
            .image("a", grey_square(1))
            .display_block()),
        ok(ok(figure((200, 200), |_| Ok(()))).display_block()),
    ] {
        assert!(payload(&block, "image/svg+xml").starts_with("<svg"));
    }

    let image = Image::from(grey_square(77));
    let png = BASE64
        .decode(payload(&ok(image.display_block()), "image/png"))
        .unwrap();
    assert_eq!(decode_png(&png), grey_square(77));

    let mut table = Table::new(["k"]);
    ok(table.row([5]));
    let block = ok(table.display_block());
    assert_eq!(payload(&block, "text/html"), table.to_html());
}

#[test]
fn a_failed_display_shows_the_error_as_text() {
    let block = render::block_or_error(Plot::new("nothing").display_block());
    assert_eq!(
        block,
        "EVCXR_BEGIN_CONTENT text/plain\nviz: error: plot \"nothing\" is empty\nEVCXR_END_CONTENT\n"
    );
}

#[test]
fn table_cells_format_numbers_to_four_significant_digits() {
    let cases = [
        (Cell::from(0.93), "0.9300"),
        (Cell::from(27.5312), "27.53"),
        (Cell::from(1234.5678), "1235"),
        (Cell::from(1234567.0), "1.235e6"),
        (Cell::from(-1e-5), "-1.000e-5"),
        (Cell::from(0.0), "0"),
        (Cell::from(f64::NAN), "NaN"),
        (Cell::from(2.5f32), "2.500"),
        (Cell::from(u64::MAX), "18446744073709551615"),
        (Cell::from(-3i32), "-3"),
        (Cell::from("text"), "text"),
    ];
    for (cell, expected) in cases {
        assert_eq!(cell.to_string(), expected, "{cell:?}");
    }
}

#[test]
fn table_html_escapes_text_and_right_aligns_numbers() {
    let mut table = Table::new(["name \"quoted\"", "value"]);
    ok(ok(table.row(("<b>&'", 1.5))).row(vec![Cell::from("x"), Cell::from(2)]));
    let html = table.to_html();
    assert!(
        html.contains("<th>name &quot;quoted&quot;</th><th style=\"text-align:right\">value</th>")
    );
    assert!(html.contains("<td>&lt;b&gt;&amp;&#39;</td><td style=\"text-align:right\">1.500</td>"));
    assert_eq!(table.len(), 2);
    assert_eq!(Table::new(["a", "bb"]).to_string(), "a  bb\n-  --\n");
}

#[test]
fn table_rows_take_slices_arrays_and_tuples() {
    let mut table = Table::new(["a", "b", "c"]);
    ok(table.row(&[1.0, 2.0, 3.0][..]));
    ok(table.row(["x", "y", "z"]));
    ok(table.row((String::from("s"), 2usize, 0.5f32)));
    assert_eq!(table.len(), 3);
    assert_eq!(
        error_text(table.row(vec![1, 2, 3, 4])),
        "table row 3 has 4 cells but the table has 3 columns"
    );
}

#[test]
fn a_panic_while_drawing_becomes_an_error() {
    // The panic hook still prints "boom" to the test's stderr; the caller gets an error.
    let result = figure((200, 200), |_| panic!("boom"));
    assert_eq!(
        error_text(result),
        "cannot draw figure: plotters panicked: boom"
    );
}

#[test]
fn figures_report_drawing_errors() {
    let result = figure((200, 200), |_| Err("no data to draw".into()));
    assert_eq!(error_text(result), "cannot draw figure: no data to draw");
    assert!(error_text(figure((20, 20), |_| Ok(()))).starts_with("size 20x20 is out of range"));
}
