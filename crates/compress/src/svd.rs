//! One layer, factorized: `W ≈ U·V` from the truncated SVD (Eckart–Young: the best rank-r
//! approximation in the Frobenius and spectral norms), or from the truncated SVD of `T·W·S` for a
//! weighted [`Method`] (see [`crate::method`]).
//!
//! The weight goes from candle to ndarray in f64, through `lowrank::svd` (faer), and the factors
//! come back in the layer's dtype and device. f64 because the tail singular values of a trained
//! weight are small: in f32 their round-off would blur the error the report promises.

use candle_core::{DType, Device, Tensor};
use lowrank::ndarray::Array2;
use lowrank::svd::{Svd, frobenius_norm, svd};
use models::Linear;
use models::linear::ActivationStats;

use crate::calibrate::relative_output_error;
use crate::error::{Error, Result};
use crate::method::{LayerStats, Method, Transform, gram};

/// The largest rank `r` whose factors hold fewer numbers than the dense weight,
/// `r·(in+out) < in·out`; 0 when no rank saves anything (a 1×n layer).
pub fn largest_useful_rank(in_dim: usize, out_dim: usize) -> usize {
    let (weights, per_rank) = (in_dim * out_dim, in_dim + out_dim);
    if weights == 0 {
        return 0;
    }
    ((weights - 1) / per_rank).min(in_dim.min(out_dim))
}

/// Refuses rank 0, a rank above `min(in, out)`, and a rank whose factors would not be smaller
/// than the dense weight (a "compression" that grows the layer is always a mistake).
pub fn check_rank(rank: usize, in_dim: usize, out_dim: usize) -> Result<()> {
    let reason = if rank == 0 {
        "rank 0 keeps nothing"
    } else if rank > in_dim.min(out_dim) {
        "a matrix has no more than min(in, out) singular values"
    } else if rank * (in_dim + out_dim) >= in_dim * out_dim {
        "the factors would hold at least as many numbers as the dense weight"
    } else {
        return Ok(());
    };
    Err(Error::InvalidRank {
        rank,
        in_dim,
        out_dim,
        dense_params: in_dim * out_dim,
        factored_params: rank * (in_dim + out_dim),
        max_useful: largest_useful_rank(in_dim, out_dim),
        reason,
    })
}

/// The rank-`rank` SVD factorization of a dense layer, bias kept:
/// `u = U_r·Σ_r` (out×r) and `v = V_rᵀ` (r×in), so `y = (x·vᵀ)·uᵀ + b`.
///
/// Σ goes to `u` (as `lowrank::svd::Svd::into_factors` does) so that `v` keeps orthonormal rows:
/// the first product is a pure projection of the input onto the top `r` right singular directions,
/// which preserves the input's scale (no overflow risk in half precision) and lets a later step
/// (fine-tuning, rank reduction) read `v` as a basis. Splitting √Σ to both sides would balance the
/// factors' norms, which only matters when both are trained; nothing here trains them.
pub fn factorize_svd(layer: &Linear, rank: usize) -> Result<Linear> {
    check_rank(rank, layer.in_dim(), layer.out_dim())?;
    Ok(Decomposition::of(layer)?.factorize(rank)?.layer)
}

/// The rank-`rank` factorization of a dense layer by `method`, bias kept, with `stats` the layer's
/// calibration statistics (needed by the activation-aware methods; [`Method::Fisher`] takes its
/// importances through [`crate::factorize_fisher`]). The factors have the same form as
/// [`factorize_svd`]'s: `u` (out×r) holds the singular values, `v` (r×in) maps back through the
/// method's input transform.
pub fn factorize(
    layer: &Linear,
    rank: usize,
    method: Method,
    stats: Option<&ActivationStats>,
) -> Result<Linear> {
    check_rank(rank, layer.in_dim(), layer.out_dim())?;
    let stats = stats.map(LayerStats::Activations);
    Ok(Decomposition::with_method(layer, method, stats)?
        .factorize(rank)?
        .layer)
}

/// A dense layer's weight and the full SVD of the matrix its method truncates (`T·W·S`, `T` and
/// `S` the output and input transforms; `W` itself for plain SVD), kept so a rank rule can read
/// the spectrum before the rank is chosen, without decomposing twice.
#[derive(Debug)]
pub(crate) struct Decomposition {
    pub(crate) weight: Array2<f64>,
    pub(crate) svd: Svd<f64>,
    transform: Transform,
    /// `XᵀX` of the calibration rows, when there are some: the report's output error.
    gram: Option<Array2<f64>>,
    bias: Option<Tensor>,
    dtype: DType,
    device: Device,
}

/// A factorized layer and how far it is from the original: `‖W − U·V‖_F / ‖W‖_F`, and with
/// calibration data `‖X·(W − U·V)ᵀ‖_F / ‖X·Wᵀ‖_F`.
#[derive(Debug)]
pub(crate) struct Factorized {
    pub(crate) layer: Linear,
    pub(crate) relative_error: f64,
    pub(crate) output_error: Option<f64>,
}

impl Decomposition {
    /// Plain SVD. Refuses a layer that is not dense: factorizing a factorization (or a LoRA
    /// layer's base) would silently drop what the layer already is.
    pub(crate) fn of(layer: &Linear) -> Result<Self> {
        Self::with_method(layer, Method::Svd, None)
    }

    /// The SVD of `T·W·S` for `method`'s `T` and `S`, built from `stats`.
    pub(crate) fn with_method(
        layer: &Linear,
        method: Method,
        stats: Option<LayerStats<'_>>,
    ) -> Result<Self> {
        let Linear::Dense(dense) = layer else {
            return Err(Error::NotDense { kind: layer.kind() });
        };
        let weight = to_array(&dense.weight)?;
        let transform = Transform::new(method, stats, weight.nrows(), weight.ncols())?;
        let svd = svd(transform.apply(&weight).view())?;
        let gram = stats
            .and_then(LayerStats::activations)
            .map(gram)
            .transpose()?;
        Ok(Self {
            weight,
            svd,
            transform,
            gram,
            bias: dense.bias.clone(),
            dtype: dense.weight.dtype(),
            device: dense.weight.device().clone(),
        })
    }

    pub(crate) fn in_dim(&self) -> usize {
        self.weight.ncols()
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.weight.nrows()
    }

    /// The low-rank layer keeping the first `rank` singular triplets, and its measured errors.
    pub(crate) fn factorize(&self, rank: usize) -> Result<Factorized> {
        check_rank(rank, self.in_dim(), self.out_dim())?;
        let (u, vt) = self.svd.truncate(rank)?.into_factors();
        let (u, v) = self.transform.undo(u, vt);
        let approximation = u.dot(&v);
        let residual = &self.weight - &approximation;
        let norm = frobenius_norm(self.weight.view());
        let relative_error = if norm == 0.0 {
            0.0
        } else {
            frobenius_norm(residual.view()) / norm
        };
        let output_error = self
            .gram
            .as_ref()
            .map(|g| relative_output_error(&self.weight, &approximation, g));
        let layer = Linear::low_rank(
            to_tensor(&u, self.dtype, &self.device)?,
            to_tensor(&v, self.dtype, &self.device)?,
            self.bias.clone(),
        )?;
        Ok(Factorized {
            layer,
            relative_error,
            output_error,
        })
    }
}

/// A 2-D tensor as an f64 array (read on the CPU, whatever device holds it).
pub(crate) fn to_array(tensor: &Tensor) -> Result<Array2<f64>> {
    let (rows, cols) = tensor.dims2()?;
    let data = tensor
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    Array2::from_shape_vec((rows, cols), data).map_err(|_| {
        Error::Math(lowrank::Error::ShapeMismatch {
            op: "tensor to array".into(),
            left: vec![rows, cols],
            right: tensor.dims().to_vec(),
        })
    })
}

/// An f64 array as a tensor of `dtype` on `device`.
pub(crate) fn to_tensor(array: &Array2<f64>, dtype: DType, device: &Device) -> Result<Tensor> {
    let data: Vec<f64> = array.iter().copied().collect();
    Ok(Tensor::from_vec(data, array.dim(), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?)
}

/// `‖A − B‖_F / ‖A‖_F` between two layers' effective weights (0 when `A` is zero).
pub fn relative_error(original: &Linear, approximation: &Linear) -> Result<f64> {
    let a = to_array(&original.effective_weight()?)?;
    let b = to_array(&approximation.effective_weight()?)?;
    if a.dim() != b.dim() {
        return Err(Error::Math(lowrank::Error::ShapeMismatch {
            op: "relative error".into(),
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        }));
    }
    let norm = frobenius_norm(a.view());
    let residual = &a - &b;
    Ok(if norm == 0.0 {
        0.0
    } else {
        frobenius_norm(residual.view()) / norm
    })
}
