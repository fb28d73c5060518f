//! Lesson 05, attention: the library's [`models::attention`] (re-exported, so
//! `attention::causal_mask` reads the same in the lesson), scaled dot-product attention written
//! out in ndarray (the lesson) and checked against it, the variance argument for the `1/√d`
//! scale, and attention maps of the pretrained all-MiniLM-L6-v2's first layer.

pub use models::attention::*;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::LessonResult;
use crate::exercise::{self, Checker, Exercise, SelfTest, Verdict};
use crate::gaussian_matrix;
use crate::neural_networks::{to_array, to_tensor};

pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "05-softmax-rows",
        lesson: "05-attention",
        title: "A numerically stable softmax over rows",
        task: "Return the softmax of each row of a matrix: exp of each entry divided by the sum of its \
               row's exps. It must stay finite for entries like 1000.",
        hint: "subtract each row's maximum before exp: softmax is unchanged by a shift, and exp(0) cannot overflow",
        template: "use lab::*;\n\nfn answer(scores: &Array2<f64>) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::attention::check_softmax_rows",
        self_test: || SelfTest {
            reference: check_softmax_rows(softmax_rows),
            wrong: check_softmax_rows(|scores| {
                let mut e = scores.mapv(f64::exp);
                for mut row in e.rows_mut() {
                    let sum = row.sum();
                    row /= sum;
                }
                e
            }),
        },
    },
    Exercise {
        id: "05-causal-mask",
        lesson: "05-attention",
        title: "The causal mask",
        task: "Return the additive causal mask for n tokens, an n×n matrix: 0 where query i may look at \
               key j (j ≤ i) and a huge negative number (f64::MIN, as the library uses, or −∞) where \
               it may not.",
        hint: "row = query, column = key; a token sees itself and everything before it, so the zeros are on and below the diagonal",
        template: "use lab::*;\n\nfn answer(n: usize) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::attention::check_causal_mask",
        self_test: || SelfTest {
            reference: check_causal_mask(causal_mask_matrix),
            wrong: check_causal_mask(|n| causal_mask_matrix(n).t().to_owned()),
        },
    },
    Exercise {
        id: "05-attention",
        lesson: "05-attention",
        title: "Scaled dot-product attention",
        task: "Given queries Q (n×d), keys K (m×d) and values V (m×e), return softmax(Q·Kᵀ/√d)·V, \
               the softmax taken over each row (over the keys).",
        hint: "scores = Q·Kᵀ divided by the square root of d = Q's number of columns; softmax each row; then multiply by V",
        template: "use lab::*;\n\nfn answer(q: &Array2<f64>, k: &Array2<f64>, v: &Array2<f64>) -> Array2<f64> {\n    todo!()\n}\n",
        checker: "lab::attention::check_attention",
        self_test: || SelfTest {
            reference: check_attention(|q, k, v| {
                attention_ndarray(q, k, v, None).unwrap_or_else(|_| Array2::zeros((0, 0)))
            }),
            wrong: check_attention(|q, k, v| softmax_rows(&q.dot(&k.t())).dot(v)),
        },
    },
    Exercise {
        id: "05-attention-flops",
        lesson: "05-attention",
        title: "FLOPs of a self-attention block",
        task: "Return the FLOPs of one self-attention block on one sequence of s tokens of width d: \
               the Q, K, V projections, the scores Q·Kᵀ over all heads, the weighted sum of values \
               and the output projection (multiply and add counted as 2; softmax and biases left out).",
        hint: "four d×d projections cost 2·s·d² each; scores and mixing cost 2·s²·d each, whatever the number of heads",
        template: "fn answer(s: usize, d: usize) -> u64 {\n    todo!()\n}\n",
        checker: "lab::attention::check_attention_flops",
        self_test: || SelfTest {
            reference: check_attention_flops(|s, d| {
                attention_flops(1, s, s, d, 1).map_or(0, |f| f.total)
            }),
            wrong: check_attention_flops(|s, d| {
                let (s, d) = (s as u64, d as u64);
                8 * s * d * d + 2 * s * s * d
            }),
        },
    },
];

// ---------------------------------------------------------------------------------------------
// Attention by hand.

/// Row-wise softmax, each row shifted by its maximum so `exp` cannot overflow. A row of only
/// `−∞` (every key masked out) has no softmax: it comes back as NaN, as in the formula.
pub fn softmax_rows(scores: &Array2<f64>) -> Array2<f64> {
    crate::neural_networks::softmax_rows(scores)
}

/// The additive causal mask for `n` tokens as a matrix: 0 on and below the diagonal, `f64::MIN`
/// above it (the library's [`causal_mask`] in f64, as a plain n×n matrix).
pub fn causal_mask_matrix(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(i, j)| if j <= i { 0.0 } else { f64::MIN })
}

/// The additive padding mask for one sequence whose first `tokens` of `n` positions are real:
/// every query row is 0 on the real keys and `f64::MIN` on the padding.
pub fn padding_mask_matrix(n: usize, tokens: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, n), |(_, j)| if j < tokens { 0.0 } else { f64::MIN })
}

fn check_qkv(q: &Array2<f64>, k: &Array2<f64>, v: Option<&Array2<f64>>) -> LessonResult<()> {
    if q.ncols() != k.ncols() {
        return Err(format!(
            "queries have {} features but keys {}: they must match to take dot products",
            q.ncols(),
            k.ncols()
        )
        .into());
    }
    if let Some(v) = v
        && v.nrows() != k.nrows()
    {
        return Err(format!("{} keys but {} values", k.nrows(), v.nrows()).into());
    }
    Ok(())
}

// ANCHOR: attention
/// The attention pattern `softmax(Q·Kᵀ/√d + mask)`: row i says how much query i takes from
/// each key. `mask` is additive, (n_queries × n_keys).
pub fn attention_weights_ndarray(
    q: &Array2<f64>,
    k: &Array2<f64>,
    mask: Option<&Array2<f64>>,
) -> LessonResult<Array2<f64>> {
    check_qkv(q, k, None)?;
    let d = q.ncols() as f64;
    let mut scores = q.dot(&k.t()) / d.sqrt();
    if let Some(mask) = mask {
        if mask.dim() != scores.dim() {
            return Err(format!(
                "mask {:?} does not match the scores {:?}",
                mask.dim(),
                scores.dim()
            )
            .into());
        }
        scores += mask;
    }
    Ok(softmax_rows(&scores))
}

/// Scaled dot-product attention `softmax(Q·Kᵀ/√d + mask)·V` (Vaswani et al. 2017), in ndarray.
pub fn attention_ndarray(
    q: &Array2<f64>,
    k: &Array2<f64>,
    v: &Array2<f64>,
    mask: Option<&Array2<f64>>,
) -> LessonResult<Array2<f64>> {
    check_qkv(q, k, Some(v))?;
    Ok(attention_weights_ndarray(q, k, mask)?.dot(v))
}
// ANCHOR_END: attention

/// The library's [`scaled_dot_product_attention`] (candle) on matrices: one sequence, one head.
pub fn attention_candle(
    q: &Array2<f64>,
    k: &Array2<f64>,
    v: &Array2<f64>,
    mask: Option<&Array2<f64>>,
) -> LessonResult<Array2<f64>> {
    check_qkv(q, k, Some(v))?;
    let four_d = |a: &Array2<f64>| -> LessonResult<Tensor> {
        let (rows, cols) = a.dim();
        Ok(to_tensor(a)?.reshape((1, 1, rows, cols))?)
    };
    let mask = mask.map(four_d).transpose()?;
    let out = scaled_dot_product_attention(&four_d(q)?, &four_d(k)?, &four_d(v)?, mask.as_ref())?;
    let (_, _, rows, cols) = out.dims4()?;
    to_array(&out.reshape((rows, cols))?)
}

// ---------------------------------------------------------------------------------------------
// Why √d.

/// The sample mean and variance of `q·k` over `samples` pairs of independent standard normal
/// vectors of length `d`: the variance is `d`, so unscaled scores grow like √d.
pub fn dot_product_statistics(d: usize, samples: usize, seed: u64) -> (f64, f64) {
    let mut rng = exercise::rng(seed);
    let dots: Vec<f64> = (0..samples)
        .map(|_| {
            (0..d)
                .map(|_| {
                    let q: f64 = StandardNormal.sample(&mut rng);
                    let k: f64 = StandardNormal.sample(&mut rng);
                    q * k
                })
                .sum()
        })
        .collect();
    let n = dots.len().max(1) as f64;
    let mean = dots.iter().sum::<f64>() / n;
    let variance = dots.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, variance)
}

/// The average largest attention weight per query, for random Q, K (`n` tokens, width `d`), with
/// the scores divided by `√d` (`scaled`) or not: near 1 means a softmax saturated on one key,
/// whose gradient with respect to the other scores all but vanishes.
pub fn mean_max_weight(n: usize, d: usize, scaled: bool, seed: u64) -> LessonResult<f64> {
    let q = gaussian_matrix(n, d, seed);
    let k = gaussian_matrix(n, d, seed.wrapping_add(1));
    let weights = if scaled {
        attention_weights_ndarray(&q, &k, None)?
    } else {
        softmax_rows(&q.dot(&k.t()))
    };
    let maxima: Array1<f64> = weights
        .rows()
        .into_iter()
        .map(|row| row.fold(0.0_f64, |m, &w| m.max(w)))
        .collect();
    Ok(maxima.mean().unwrap_or(0.0))
}

// ---------------------------------------------------------------------------------------------
// A real model's attention.

/// The first layer's attention pattern of all-MiniLM-L6-v2 on one text: the tokens and one
/// (tokens × tokens) map per head.
#[derive(Debug, Clone)]
pub struct MiniLmAttention {
    pub tokens: Vec<String>,
    pub heads: Vec<Array2<f64>>,
}

impl MiniLmAttention {
    /// The head that puts the most weight on the token just before each query.
    pub fn previous_token_head(&self) -> usize {
        self.heads
            .iter()
            .map(previous_token_share)
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (h, share)| {
                if share > best.1 { (h, share) } else { best }
            })
            .0
    }
}

/// The mean weight a query gives the token just before it (queries 1.. of a square map).
pub fn previous_token_share(weights: &Array2<f64>) -> f64 {
    let n = weights.nrows().min(weights.ncols());
    if n < 2 {
        return 0.0;
    }
    (1..n).map(|i| weights[[i, i - 1]]).sum::<f64>() / (n - 1) as f64
}

/// Layer 0's attention probabilities of the pretrained all-MiniLM-L6-v2 (found by
/// [`crate::design_space::minilm_dir`]) for `text`.
///
/// The model's forward pass returns only hidden states, so the pattern is recomputed from its
/// parts: the embeddings are the model itself cut to zero layers (so they are exactly its own),
/// then layer 0's `query` and `key` projections, split into 12 heads, and the library's
/// [`attention_weights`].
pub fn minilm_attention(text: &str) -> LessonResult<MiniLmAttention> {
    let dir = crate::design_space::minilm_dir()?;
    let tokenizer = models::tokenizer::Tokenizer::from_dir(&dir)?;
    let ids = tokenizer.encode(text, true)?;
    let tokens = ids
        .iter()
        .map(|&id| {
            tokenizer
                .inner()
                .id_to_token(id)
                .unwrap_or_else(|| format!("[{id}]"))
        })
        .collect();
    let mut config = models::bert::Config::from_file(dir.join("config.json"))?;
    let n_heads = config.num_attention_heads;
    config.num_hidden_layers = 0;
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    let layer0 = |name: &str| -> LessonResult<candle_nn::Linear> {
        let key = format!("encoder.layer.0.attention.self.{name}");
        let get = |part: &str| {
            tensors
                .get(&format!("{key}.{part}"))
                .cloned()
                .ok_or_else(|| format!("model.safetensors has no {key}.{part}"))
        };
        Ok(candle_nn::Linear::new(get("weight")?, Some(get("bias")?)))
    };
    let (query, key) = (layer0("query")?, layer0("key")?);
    let embeddings = models::bert::BertModel::load(
        candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu),
        &config,
    )?;
    let n = ids.len();
    let input_ids = Tensor::from_vec(ids, (1, n), &Device::Cpu)?;
    let xs = embeddings.forward(
        &input_ids,
        &Tensor::ones((1, n), DType::U32, &Device::Cpu)?,
        None,
    )?;
    let q = split_heads(&candle_nn::Module::forward(&query, &xs)?, n_heads)?;
    let k = split_heads(&candle_nn::Module::forward(&key, &xs)?, n_heads)?;
    let weights = attention_weights(&q, &k, None)?.squeeze(0)?;
    let heads = (0..n_heads)
        .map(|h| to_array(&weights.get(h)?))
        .collect::<LessonResult<Vec<_>>>()?;
    Ok(MiniLmAttention { tokens, heads })
}

/// A deterministic stand-in when the model is not installed: causal attention of formula-made
/// queries and keys over six tokens.
pub fn toy_attention() -> LessonResult<(Vec<String>, Array2<f64>)> {
    let tokens: Vec<String> = ["the", "cat", "sat", "on", "the", "mat"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let q = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 4 + j) as f64 * 0.7).sin() * 2.0);
    let k = Array2::from_shape_fn((6, 4), |(i, j)| ((i * 4 + j) as f64 * 0.3).cos() * 2.0);
    let weights = attention_weights_ndarray(&q, &k, Some(&causal_mask_matrix(6)))?;
    Ok((tokens, weights))
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// The chapter's figures, drawn into `out` when the book is built.
pub fn figures(out: &Path) -> LessonResult<()> {
    let lengths: Vec<usize> = (1..=32).map(|i| 256 * i).collect();
    let xs: Vec<f64> = lengths.iter().map(|&s| s as f64).collect();
    let mut projections = Vec::new();
    let mut quadratic = Vec::new();
    for &s in &lengths {
        let f = attention_flops(1, s, s, 768, 12)?;
        projections.push((f.projections + f.output) as f64 / 1e9);
        quadratic.push((f.scores + f.mixing) as f64 / 1e9);
    }
    viz::Plot::new("Self-attention FLOPs, d = 768")
        .x_label("sequence length s")
        .y_label("GFLOPs")
        .line("projections (8·s·d²)", &xs, &projections)
        .line("scores + mixing (4·s²·d)", &xs, &quadratic)
        .log_y()
        .save(out.join("05-attention-cost.svg"))?;
    let text = "The cat sat on the mat because it was tired.";
    let heatmap = match minilm_attention(text) {
        Ok(found) => {
            let head = found.previous_token_head();
            viz::Heatmap::new(
                format!("all-MiniLM-L6-v2, layer 0, head {head}"),
                found.heads[head].view(),
            )
            .row_labels(&found.tokens)
            .col_labels(&found.tokens)
        }
        Err(_) => {
            let (tokens, weights) = toy_attention()?;
            viz::Heatmap::new("Causal attention of a toy example", weights.view())
                .row_labels(&tokens)
                .col_labels(&tokens)
        }
    };
    heatmap
        .x_label("key")
        .y_label("query")
        .range(0.0, 1.0)
        .save(out.join("05-attention-map.svg"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Checkers.

/// Checks `answer(scores)` against candle's `softmax_last_dim`.
pub fn check_softmax_rows(answer: impl Fn(&Array2<f64>) -> Array2<f64>) -> Verdict {
    let mut rng = exercise::rng(51);
    let mut cases = vec![
        ndarray::array![[1.0, 2.0, 3.0]],
        ndarray::array![[0.0, 0.0], [5.0, -5.0]],
        // Large scores: exp overflows without the max shift.
        ndarray::array![[1000.0, 999.0, 0.0], [-1000.0, -1001.0, -1002.0]],
        // A masked entry, as attention adds it.
        ndarray::array![[0.5, f64::MIN, 0.25]],
    ];
    cases.extend((0..10).map(|seed| {
        let (rows, cols) = (rng.random_range(1..8), rng.random_range(1..10));
        gaussian_matrix(rows, cols, 510 + seed) * rng.random_range(0.5..6.0)
    }));
    let exercise = &EXERCISES[0];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |scores| answer(scores),
        |scores, got| {
            let want = to_tensor(scores)
                .and_then(|t| candle_nn::ops::softmax_last_dim(&t))
                .map_err(|e| e.to_string())
                .and_then(|t| to_array(&t).map_err(|e| e.to_string()))?;
            exercise::close_arrays(&format!("scores {scores:.3}"), &got, &want, 1e-12)
        },
    )
}

/// Checks `answer(n)` against the library's [`causal_mask`] (f64): zeros must be exact, blocked
/// entries at most −1e300 (`f64::MIN` or −∞).
pub fn check_causal_mask(answer: impl Fn(usize) -> Array2<f64>) -> Verdict {
    let cases: Vec<usize> = vec![1, 2, 3, 5, 8, 13];
    let exercise = &EXERCISES[1];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |&n| answer(n),
        |&n, got| {
            let want = causal_mask(n, 0, DType::F64, &Device::Cpu)
                .and_then(|m| Ok(m.reshape((n, n))?))
                .map_err(|e| e.to_string())
                .and_then(|t| to_array(&t).map_err(|e| e.to_string()))?;
            if got.dim() != (n, n) {
                return Err(format!(
                    "n = {n}: your mask has shape {:?}, expected ({n}, {n})",
                    got.dim()
                ));
            }
            for ((i, j), &w) in want.indexed_iter() {
                let g = got[[i, j]];
                let right = if w == 0.0 { g == 0.0 } else { g <= -1e300 };
                if !right {
                    let expected = if w == 0.0 { "0" } else { "f64::MIN or −∞" };
                    return Err(format!(
                        "n = {n}: entry [{i}, {j}] (query {i}, key {j}) is {g}, expected {expected}"
                    ));
                }
            }
            Ok(())
        },
    )
}

/// Checks `answer(q, k, v)` against the library's [`scaled_dot_product_attention`] (candle).
pub fn check_attention(
    answer: impl Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>) -> Array2<f64>,
) -> Verdict {
    let mut rng = exercise::rng(53);
    let mut cases = vec![(
        ndarray::array![[1.0, 0.0]],
        ndarray::array![[0.0, 1.0], [0.0, -1.0]],
        ndarray::array![[2.0, 0.0], [4.0, 2.0]],
    )];
    for seed in 0..10 {
        let (n, m, d, e) = (
            rng.random_range(1..7),
            rng.random_range(1..7),
            rng.random_range(2..17),
            rng.random_range(1..7),
        );
        cases.push((
            gaussian_matrix(n, d, 530 + seed) * 2.0,
            gaussian_matrix(m, d, 540 + seed) * 2.0,
            gaussian_matrix(m, e, 550 + seed),
        ));
    }
    let exercise = &EXERCISES[2];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |(q, k, v)| answer(q, k, v),
        |(q, k, v), got| {
            let want = attention_candle(q, k, v, None).map_err(|e| e.to_string())?;
            let what = format!("Q {:?}, K {:?}, V {:?}", q.dim(), k.dim(), v.dim());
            exercise::close_arrays(&what, &got, &want, 1e-9)
        },
    )
}

/// Checks `answer(s, d)` against the library's [`attention_flops`] for one sequence.
pub fn check_attention_flops(answer: impl Fn(usize, usize) -> u64) -> Verdict {
    let mut rng = exercise::rng(54);
    let mut cases = vec![(1, 1), (128, 768), (1024, 768), (4096, 4096)];
    cases.extend((0..20).map(|_| (rng.random_range(1..5000), rng.random_range(1..2000))));
    let exercise = &EXERCISES[3];
    Checker::new(exercise.id, exercise.hint, cases).run(
        |&(s, d)| answer(s, d),
        |&(s, d), got| {
            let want = attention_flops(1, s, s, d, 1).map_err(|e| e.to_string())?;
            exercise::equal(&format!("s={s}, d={d}"), got, want.total)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        assert_eq!(a.dim(), b.dim());
        (a - b).iter().fold(0.0, |m, d| m.max(d.abs()))
    }

    #[test]
    fn ndarray_attention_matches_candle_with_and_without_masks() {
        let (q, k, v) = (
            gaussian_matrix(5, 8, 1),
            gaussian_matrix(5, 8, 2),
            gaussian_matrix(5, 3, 3),
        );
        for mask in [
            None,
            Some(causal_mask_matrix(5)),
            Some(padding_mask_matrix(5, 3)),
        ] {
            let hand = attention_ndarray(&q, &k, &v, mask.as_ref()).unwrap();
            let library = attention_candle(&q, &k, &v, mask.as_ref()).unwrap();
            assert!(max_diff(&hand, &library) < 1e-12);
        }
        let library = causal_mask(5, 0, DType::F64, &Device::Cpu).unwrap();
        let library = to_array(&library.reshape((5, 5)).unwrap()).unwrap();
        assert_eq!(library, causal_mask_matrix(5));
        assert!(attention_ndarray(&q, &gaussian_matrix(5, 7, 4), &v, None).is_err());
    }

    #[test]
    fn a_causal_output_ignores_later_tokens() {
        let (q, k, mut v) = (
            gaussian_matrix(4, 6, 5),
            gaussian_matrix(4, 6, 6),
            gaussian_matrix(4, 2, 7),
        );
        let mask = causal_mask_matrix(4);
        let before = attention_ndarray(&q, &k, &v, Some(&mask)).unwrap();
        v.row_mut(3).fill(100.0);
        let after = attention_ndarray(&q, &k, &v, Some(&mask)).unwrap();
        assert_eq!(before.row(0), after.row(0));
        assert_eq!(before.row(2), after.row(2));
    }

    #[test]
    fn dot_products_have_variance_d() {
        let (_, variance) = dot_product_statistics(64, 4000, 1);
        assert!((variance / 64.0 - 1.0).abs() < 0.1, "{variance}");
        let scaled = mean_max_weight(32, 256, true, 1).unwrap();
        let unscaled = mean_max_weight(32, 256, false, 1).unwrap();
        assert!(unscaled > 0.8 && scaled < 0.3, "{scaled} {unscaled}");
    }

    #[test]
    fn minilm_attention_rows_are_distributions_when_the_model_is_installed() {
        // The model comes from the reference venv; without it there is nothing to test here.
        let Ok(found) = minilm_attention("The cat sat.") else {
            return;
        };
        assert_eq!(found.heads.len(), 12);
        assert_eq!(found.tokens.first().map(String::as_str), Some("[CLS]"));
        for head in &found.heads {
            assert_eq!(head.dim(), (found.tokens.len(), found.tokens.len()));
            for row in head.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-5);
            }
        }
    }
}
