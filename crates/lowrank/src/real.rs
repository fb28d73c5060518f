//! The element types the library computes with.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive, NumAssign};

/// A real floating-point element type: implemented for `f32` and `f64`.
///
/// The bound gathers what the three worlds the crate joins need: ndarray's products
/// (`LinalgScalar`), faer's decompositions (`faer::traits::RealField`) and plain float math.
pub trait Real:
    LinalgScalar
    + ScalarOperand
    + Float
    + FromPrimitive
    + NumAssign
    + faer::traits::RealField
    + Sum
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Converts a count or a constant into this type.
    fn of(value: f64) -> Self {
        Self::from_f64(value).unwrap_or_else(Self::nan)
    }

    /// Widens to `f64` for reporting (errors, ratios, PSNR).
    fn as_f64(self) -> f64 {
        self.to_f64().unwrap_or(f64::NAN)
    }
}

impl Real for f32 {}
impl Real for f64 {}
