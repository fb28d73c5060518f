//! Lesson 09 (`09-compressing-bart`): compressing BART's attention by truncated SVD, the thesis's
//! path. The surgery is [`compress`]'s (`compress_model`, its rank rules and budget); this module
//! holds what the chapter adds around it: BART-base with the fixtures' hash-formula weights, the
//! small dialogue BART's judges (ROUGE-L of greedy summaries, cosine of encoder states, measured
//! latency), a sweep over ranks, the exercises and their checkers, and the book's figures.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use compress::{Plan, RankRule};
use eval::rouge::Rouge;
use models::bart::Bart;
use models::generation::GenerationConfig;
use models::linear::Linear;
use models::tokenizer::Tokenizer;
use ndarray::{Array1, Array2};
use rand::Rng;
use train::summarizer::{self, SummarizerConfig};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::{gaussian_matrix, spectrum, svd};

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "09-svd-factors",
        lesson: "09-compressing-bart",
        title: "The factors of a rank-r layer",
        task: "Given a weight W (out×in) and a rank r, return (U_r·Σ_r, V_rᵀ): an out×r and an r×in \
               matrix whose product is the best rank-r approximation of W, with Σ on the left so \
               that V_rᵀ keeps orthonormal rows (the layout compress::factorize_svd uses).",
        hint: "take svd::svd(w.view())?; multiply the first r columns of U by the first r singular values; keep the first r rows of Vᵀ as they are",
        template: "use lab::*;\n\nfn answer(w: &Array2<f64>, r: usize) -> (Array2<f64>, Array2<f64>) {\n    todo!()\n}\n",
        checker: "lab::compressing_bart::check_svd_factors",
        self_test: || SelfTest {
            reference: check_svd_factors(|w, r| svd_factors(w, r).unwrap_or_default()),
            wrong: check_svd_factors(|w, r| {
                let Ok(d) = svd::truncated_svd(w.view(), r) else {
                    return Default::default();
                };
                let sv = Array2::from_diag(&d.s).dot(&d.vt);
                (d.u, sv)
            }),
        },
    },
    Exercise {
        id: "09-rank-for-ratio",
        lesson: "09-compressing-bart",
        title: "The rank that fits a parameter budget",
        task: "Return the largest rank r whose factors U (out×r) and V (r×in) hold at most a fraction \
               `ratio` of an out×in layer's in·out weights, or 0 when not even rank 1 fits.",
        hint: "the factors hold r·(in + out) numbers; r = ⌊ratio·in·out / (in + out)⌋",
        template: "fn answer(in_dim: usize, out_dim: usize, ratio: f64) -> usize {\n    todo!()\n}\n",
        checker: "lab::compressing_bart::check_rank_for_ratio",
        self_test: || SelfTest {
            reference: check_rank_for_ratio(rank_for_ratio),
            wrong: check_rank_for_ratio(|i, o, ratio| (ratio * i.min(o) as f64) as usize),
        },
    },
    Exercise {
        id: "09-cosine",
        lesson: "09-compressing-bart",
        title: "Row-wise cosine similarity",
        task: "Given two matrices of one shape (the original model's outputs and the compressed \
               one's, a row per token), return the cosine similarity of each pair of rows; two zero \
               rows count as identical (1) and a zero row against a non-zero one as 0.",
        hint: "a·b / (|a|·|b|) per row; test for zero norms before dividing",
        template: "use lab::*;\n\nfn answer(a: &Array2<f64>, b: &Array2<f64>) -> Vec<f64> {\n    todo!()\n}\n",
        checker: "lab::compressing_bart::check_cosine",
        self_test: || SelfTest {
            reference: check_cosine(|a, b| row_cosines(a, b).unwrap_or_default()),
            wrong: check_cosine(|a, b| {
                a.rows()
                    .into_iter()
                    .zip(b.rows())
                    .map(|(x, y)| x.dot(&y) / (x.dot(&x).sqrt() * y.dot(&y).sqrt()))
                    .collect()
            }),
        },
    },
];

/// The q, k, v and output projections of every attention block of a BART (self-attention in
/// both stacks, cross-attention in the decoder), as `compress::Plan` globs.
pub const ATTENTION: [&str; 4] = [
    "*attn.q_proj",
    "*attn.k_proj",
    "*attn.v_proj",
    "*attn.out_proj",
];

/// BART-base's real shapes (`tests/fixtures/models/bart-base-config.json`) with the hash-formula
/// weights the test fixtures share with Python: right for shapes, parameter counts and runtime;
/// its spectra are those of random matrices and its outputs mean nothing.
pub fn synthetic_bart_base() -> LessonResult<Bart> {
    let cfg = models::bart::Config::from_json_file(&crate::lora::fixture("bart-base-config.json"))?;
    let weights = models::bart::synthetic_weights(&cfg, &Device::Cpu)?;
    let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    Ok(Bart::load(vb, &cfg)?)
}

/// The real facebook/bart-base when `LOWRANK_BART_DIR` names its folder (config.json,
/// model.safetensors): the chapter's full run. `None` when the variable is unset.
pub fn real_bart_base() -> LessonResult<Option<Bart>> {
    match std::env::var_os("LOWRANK_BART_DIR") {
        Some(dir) => Ok(Some(Bart::from_dir(
            Path::new(&dir),
            DType::F32,
            &Device::Cpu,
        )?)),
        None => Ok(None),
    }
}

/// The summarizer the chapter judges: the course's default one when `lowrank train summarizer`
/// (or lesson 06) already left it in the cache, else the seconds-long `quick` one, trained now.
pub fn summarizer_config() -> SummarizerConfig {
    let default = SummarizerConfig::default();
    let dir = crate::transformer::cache_dir()
        .join("models")
        .join(default.dir_name());
    if summarizer::is_complete(&dir) {
        default
    } else {
        SummarizerConfig::quick()
    }
}

/// `(U_r·Σ_r, V_rᵀ)` of `w`: the library's truncated SVD with Σ moved onto U.
pub fn svd_factors(w: &Array2<f64>, r: usize) -> LessonResult<(Array2<f64>, Array2<f64>)> {
    let d = svd::truncated_svd(w.view(), r)?;
    let us = &d.u * &d.s.view().insert_axis(ndarray::Axis(0));
    Ok((us, d.vt))
}

/// `compress`'s own factors of `w` at rank `r` (`factorize_svd` on a dense layer), as matrices.
pub fn library_factors(w: &Array2<f64>, r: usize) -> LessonResult<(Array2<f64>, Array2<f64>)> {
    let dense = Linear::dense(crate::lora::tensor_from_array(w)?, None)?;
    match compress::factorize_svd(&dense, r)? {
        Linear::LowRank(l) => Ok((
            crate::lora::array_from_tensor(&l.u)?,
            crate::lora::array_from_tensor(&l.v)?,
        )),
        other => Err(format!("factorize_svd returned a {} layer", other.kind()).into()),
    }
}

/// The largest rank with `r·(in + out) ≤ ratio·in·out`, by `compress`'s
/// [`RankRule::ParamRatio`]; 0 when not even rank 1 fits.
pub fn rank_for_ratio(in_dim: usize, out_dim: usize, ratio: f64) -> usize {
    Tensor::zeros((out_dim, in_dim), DType::F32, &Device::Cpu)
        .ok()
        .and_then(|w| RankRule::ParamRatio(ratio).rank_for(&w).ok())
        .unwrap_or(0)
}

/// Row-wise cosines of `a` and `b` by [`eval::similarity::row_cosines`].
pub fn row_cosines(a: &Array2<f64>, b: &Array2<f64>) -> LessonResult<Vec<f64>> {
    let flat = |m: &Array2<f64>| m.iter().copied().collect::<Vec<f64>>();
    Ok(eval::similarity::row_cosines(&flat(a), &flat(b), a.ncols())?.rows)
}

/// One layer's spectrum, summarized as the chapter plots it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrumSummary {
    pub name: String,
    /// Singular values, largest first.
    pub singular_values: Vec<f64>,
    /// `exp` of the entropy of `σ / Σσ` (Roy and Vetterli 2007): how many directions matter.
    pub effective_rank: f64,
    /// The smallest rank keeping 90% of `Σσ²`.
    pub rank_for_90: usize,
}

/// The spectra of the layers of `model` that match `patterns` (blocks `layers`, or all), by
/// `compress::layer_spectra`, with their effective rank and the rank for 90% of the energy.
pub fn spectra(
    model: &Bart,
    patterns: &[&str],
    layers: Option<&[usize]>,
) -> LessonResult<Vec<SpectrumSummary>> {
    let mut plan = Plan::new(RankRule::Fixed(1)).select(patterns.iter().copied());
    if let Some(layers) = layers {
        plan = plan.layers(layers.iter().copied());
    }
    let spectra = compress::layer_spectra(model, &plan, None)?;
    spectra
        .layers
        .into_iter()
        .map(|layer| {
            let s = Array1::from(layer.singular_values.clone());
            Ok(SpectrumSummary {
                name: layer.name,
                effective_rank: spectrum::effective_rank(s.view()),
                rank_for_90: spectrum::rank_for_energy(s.view(), 0.9)?,
                singular_values: layer.singular_values,
            })
        })
        .collect()
}

/// Judges a summarizer and its compressed copies on held-out dialogues: ROUGE-L of greedy
/// summaries against the references, cosine of encoder states with the original model's, and the
/// latency of one teacher-forced forward pass over the batch (the same shapes for every model).
pub struct Judge {
    tokenizer: Tokenizer,
    generation: GenerationConfig,
    dialogues: Vec<String>,
    summaries: Vec<String>,
    source: models::tokenizer::Encoded,
    target: models::tokenizer::Encoded,
    reference_states: Tensor,
}

impl Judge {
    /// `n` dialogues of a seed the summarizer never trained on (7777, the sweeps' held-out seed),
    /// judged against `original`'s encoder states.
    pub fn new(
        original: &Bart,
        tokenizer: Tokenizer,
        cfg: &SummarizerConfig,
        n: usize,
    ) -> LessonResult<Self> {
        let held_out = train::dialogues::generate(n, 7_777)?;
        let dialogues: Vec<String> = held_out.iter().map(|d| d.dialogue.clone()).collect();
        let summaries: Vec<String> = held_out.iter().map(|d| d.summary.clone()).collect();
        let positions = original.config().max_position_embeddings;
        let tokenizer = tokenizer.with_max_length(Some(cfg.max_source_len.min(positions)))?;
        let texts: Vec<&str> = dialogues.iter().map(String::as_str).collect();
        let source = tokenizer.encode_batch(&texts, true)?;
        let refs: Vec<&str> = summaries.iter().map(String::as_str).collect();
        let target = tokenizer.encode_batch(&refs, true)?;
        let reference_states = original.encode(&source.input_ids, &source.attention_mask)?;
        Ok(Self {
            generation: cfg.generation_config()?,
            tokenizer,
            dialogues,
            summaries,
            source,
            target,
            reference_states,
        })
    }

    /// Greedy summaries of the held-out dialogues by `model`.
    pub fn summaries(&self, model: &Bart) -> LessonResult<Vec<String>> {
        let texts: Vec<&str> = self.dialogues.iter().map(String::as_str).collect();
        Ok(summarizer::summarize(
            model,
            &self.tokenizer,
            &texts,
            &self.generation,
            &Device::Cpu,
        )?)
    }

    /// The references, for printing beside [`Judge::summaries`].
    pub fn references(&self) -> &[String] {
        &self.summaries
    }

    /// Mean ROUGE-L F1 of `model`'s summaries (stemmed, as rouge-score with `use_stemmer`).
    pub fn rouge_l(&self, model: &Bart) -> LessonResult<f64> {
        let generated = self.summaries(model)?;
        let pairs: Vec<(&str, &str)> = self
            .summaries
            .iter()
            .map(String::as_str)
            .zip(generated.iter().map(String::as_str))
            .collect();
        Ok(Rouge::new(true).mean(&pairs)?.rouge_l.fmeasure)
    }

    /// Mean cosine of `model`'s encoder states with the original's, token by token (padding
    /// included: both models see the same padded batch).
    pub fn cosine(&self, model: &Bart) -> LessonResult<f64> {
        let states = model.encode(&self.source.input_ids, &self.source.attention_mask)?;
        Ok(eval::similarity::tensor_cosines(&self.reference_states, &states)?.mean)
    }

    /// Median seconds of one teacher-forced forward pass over the batch (2 warm-ups, `runs`
    /// timed).
    pub fn latency(&self, model: &Bart, runs: usize) -> LessonResult<f64> {
        let latency = eval::timing::measure(2, runs, || {
            model.forward(
                &self.source.input_ids,
                &self.source.attention_mask,
                &self.target.input_ids,
            )?;
            Ok(())
        })?;
        Ok(latency.median)
    }
}

/// One rank of a sweep: the compressed model's size and how it was judged.
#[derive(Debug, Clone, PartialEq)]
pub struct RankPoint {
    pub rank: usize,
    /// Parameters of the factorized (attention) layers after over before.
    pub kept: f64,
    /// Parameters of all the model's linear layers after over before.
    pub linear_ratio: f64,
    pub mean_relative_error: f64,
    pub rouge_l: f64,
    pub cosine: f64,
    /// Median seconds of the judge's forward pass.
    pub seconds: f64,
}

/// Compresses a copy of `model`'s attention projections at each rank and judges it.
pub fn rank_sweep(model: &Bart, judge: &Judge, ranks: &[usize]) -> LessonResult<Vec<RankPoint>> {
    let mut points = Vec::with_capacity(ranks.len());
    for &rank in ranks {
        let mut compressed = model.clone();
        let plan = Plan::new(RankRule::Fixed(rank)).select(ATTENTION);
        let report = compress::compress_model(&mut compressed, &plan)?;
        points.push(RankPoint {
            rank,
            kept: report.ratio(),
            linear_ratio: report.linear_ratio(),
            mean_relative_error: report.mean_relative_error(),
            rouge_l: judge.rouge_l(&compressed)?,
            cosine: judge.cosine(&compressed)?,
            seconds: judge.latency(&compressed, 5)?,
        });
    }
    Ok(points)
}

/// Median milliseconds of `x·Wᵀ` for a dense `n×n` layer and of its rank-`r` factorization, on
/// `tokens` rows: what the FLOP count of chapter 1 predicts, measured.
pub fn layer_latency(n: usize, rank: usize, tokens: usize) -> LessonResult<(f64, f64)> {
    let w = Tensor::randn(0f32, 0.02, (n, n), &Device::Cpu)?;
    let dense = Linear::dense(w, None)?;
    let factored = Linear::low_rank(
        Tensor::randn(0f32, 0.02, (n, rank), &Device::Cpu)?,
        Tensor::randn(0f32, 0.02, (rank, n), &Device::Cpu)?,
        None,
    )?;
    let xs = Tensor::randn(0f32, 1.0, (tokens, n), &Device::Cpu)?;
    let time = |layer: &Linear| -> LessonResult<f64> {
        let latency = eval::timing::measure(3, 15, || {
            layer.forward(&xs)?;
            Ok(())
        })?;
        Ok(latency.median * 1e3)
    };
    Ok((time(&dense)?, time(&factored)?))
}

/// Checks `answer(W, r)`: shapes, the product against the library's best rank-r approximation
/// (`compress::factorize_svd`), and orthonormal rows of the second factor.
pub fn check_svd_factors(
    answer: impl Fn(&Array2<f64>, usize) -> (Array2<f64>, Array2<f64>),
) -> Verdict {
    let mut rng = exercise::rng(91);
    let cases: Vec<(Array2<f64>, usize)> = (0..8)
        .map(|seed| {
            let (out, inp) = (rng.random_range(4..30), rng.random_range(4..30));
            let max_useful = compress::largest_useful_rank(inp, out).max(1);
            (
                gaussian_matrix(out, inp, 900 + seed),
                rng.random_range(1..=max_useful),
            )
        })
        .collect();
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |(w, r)| answer(w, *r),
        |(w, r), (u, v)| {
            let what = format!("a {}x{} W at r = {r}", w.nrows(), w.ncols());
            let (want_u, want_v) = library_factors(w, *r).map_err(|e| e.to_string())?;
            if u.dim() != want_u.dim() || v.dim() != want_v.dim() {
                return Err(format!(
                    "{what}: your factors are {:?} and {:?}, expected {:?} and {:?}",
                    u.dim(),
                    v.dim(),
                    want_u.dim(),
                    want_v.dim()
                ));
            }
            exercise::close_arrays(
                &format!("U·V for {what}"),
                &u.dot(&v),
                &want_u.dot(&want_v),
                1e-8,
            )?;
            exercise::close_arrays(
                &format!("V·Vᵀ for {what} (V's rows must be orthonormal)"),
                &v.dot(&v.t()),
                &Array2::eye(*r),
                1e-8,
            )
        },
    )
}

/// Checks `answer(in, out, ratio)` against [`RankRule::ParamRatio`].
pub fn check_rank_for_ratio(answer: impl Fn(usize, usize, f64) -> usize) -> Verdict {
    let mut rng = exercise::rng(92);
    let mut cases = vec![
        (768, 768, 0.5),
        (768, 3072, 0.25),
        (4, 4, 0.1),
        (10, 10, 0.2),
    ];
    cases.extend((0..30).map(|_| {
        (
            rng.random_range(1..1000),
            rng.random_range(1..1000),
            rng.random_range(0.01..0.99),
        )
    }));
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |&(i, o, ratio)| answer(i, o, ratio),
        |&(i, o, ratio), got| {
            exercise::equal(
                &format!("in={i}, out={o}, ratio={ratio:.3}"),
                got,
                rank_for_ratio(i, o, ratio),
            )
        },
    )
}

/// Checks `answer(a, b)` against [`eval::similarity::row_cosines`], zero rows included.
pub fn check_cosine(answer: impl Fn(&Array2<f64>, &Array2<f64>) -> Vec<f64>) -> Verdict {
    let mut rng = exercise::rng(93);
    let mut cases: Vec<(Array2<f64>, Array2<f64>)> = Vec::new();
    for seed in 0..8 {
        let (rows, cols) = (rng.random_range(1..8), rng.random_range(1..10));
        let a = gaussian_matrix(rows, cols, 950 + seed);
        let mut b = &a + &(gaussian_matrix(rows, cols, 970 + seed) * 0.5);
        if seed % 3 == 0 {
            b.row_mut(0).fill(0.0);
        }
        cases.push((a, b));
    }
    cases.push((Array2::zeros((2, 3)), Array2::zeros((2, 3))));
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |(a, b)| answer(a, b),
        |(a, b), got| {
            let want = row_cosines(a, b).map_err(|e| e.to_string())?;
            let what = format!("two {}x{} matrices", a.nrows(), a.ncols());
            exercise::close_arrays(&what, &Array1::from(got), &Array1::from(want), 1e-9)
        },
    )
}

/// The chapter's figures: the energy kept against rank for BART-base's first encoder attention
/// block (hash-formula weights), and the measured runtime of a 768×768 layer against rank.
pub fn figures(out: &Path) -> LessonResult<()> {
    let model = synthetic_bart_base()?;
    let layers = spectra(&model, &["encoder.*self_attn.*_proj"], Some(&[0]))?;
    let mut plot = viz::Plot::new("BART-base (hash-formula weights), encoder block 0")
        .x_label("rank")
        .y_label("energy kept");
    for layer in &layers {
        let energy =
            spectrum::cumulative_energy(Array1::from(layer.singular_values.clone()).view());
        let ranks: Vec<f64> = (1..=energy.len()).map(|r| r as f64).collect();
        let short = layer
            .name
            .rsplit('.')
            .next()
            .unwrap_or(&layer.name)
            .to_string();
        plot = plot.line(short, &ranks, &energy);
    }
    plot.save(out.join("09-energy.svg"))?;

    let ranks = [16usize, 32, 64, 128, 256, 384];
    let (mut dense, mut factored) = (Vec::new(), Vec::new());
    for &r in &ranks {
        let (d, f) = layer_latency(768, r, 128)?;
        dense.push(d);
        factored.push(f);
    }
    let xs: Vec<f64> = ranks.iter().map(|&r| r as f64).collect();
    viz::Plot::new("x·Wᵀ against (x·Vᵀ)·Uᵀ: 128 tokens, 768x768, measured")
        .x_label("rank r")
        .y_label("milliseconds (median)")
        .line("dense", &xs, &dense)
        .line("factorized", &xs, &factored)
        .save(out.join("09-layer-latency.svg"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_factors_equal_the_library_factors() {
        let w = Array2::from_shape_fn((12, 9), |(i, j)| ((i * 9 + j) as f64 * 0.37).sin());
        let (u, v) = svd_factors(&w, 3).unwrap();
        let (lu, lv) = library_factors(&w, 3).unwrap();
        assert!((&u.dot(&v) - &lu.dot(&lv)).iter().all(|d| d.abs() < 1e-10));
    }

    #[test]
    fn ratio_rank_is_the_floor_of_the_budget() {
        assert_eq!(rank_for_ratio(768, 768, 0.5), 192);
        assert_eq!(rank_for_ratio(4, 4, 0.1), 0);
    }

    #[test]
    fn tiny_bart_sweep_shrinks_and_judges() {
        let dir = crate::lora::tiny_bart_dir();
        let model = Bart::from_dir(&dir, DType::F32, &Device::Cpu).unwrap();
        let cfg = SummarizerConfig::quick();
        let judge = Judge::new(&model, Tokenizer::from_dir(&dir).unwrap(), &cfg, 2).unwrap();
        assert!((judge.cosine(&model).unwrap() - 1.0).abs() < 1e-6);
        let points = rank_sweep(&model, &judge, &[2]).unwrap();
        assert!(points[0].linear_ratio < 1.0);
    }
}
