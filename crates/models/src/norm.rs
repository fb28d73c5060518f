//! LayerNorm that stays differentiable: candle's fused LayerNorm kernel has no backward pass, so
//! when the input carries a gradient (training an adapter or the whole model) the composite
//! formula runs instead; inference keeps the fused kernel.

use candle_core::{Module, Tensor};
use candle_nn::LayerNorm;

use crate::error::{Result, invalid};

pub(crate) fn layer_norm(norm: &LayerNorm, xs: &Tensor) -> Result<Tensor> {
    if !xs.track_op() {
        return Ok(norm.forward(xs)?);
    }
    let bias = norm
        .bias()
        .ok_or_else(|| invalid("a LayerNorm without bias cannot be trained here"))?;
    Ok(candle_nn::ops::layer_norm_slow(
        xs,
        norm.weight(),
        bias,
        norm.eps() as f32,
    )?)
}
