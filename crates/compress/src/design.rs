//! The decomposition design space γ = (rank, layers, tensors) of the Tucker-2 design-space study:
//! which blocks to compress (any non-empty subset of the `L` blocks), which of the `T` attention
//! tensors in them (any non-empty subset), and at which of `R` ranks, plus the uncompressed model:
//!
//! ```text
//! |S| = (2^L − 1)·(2^T − 1)·R + 1
//! ```
//!
//! For BERT-base's 12 blocks, Q, K, V, O and 8 ranks that is 491,401 points, far too many to try,
//! so [`DesignSpace`] numbers them (a point is one integer) and a sweep walks a chosen grid or a
//! seeded sample ([`DesignSpace::sample`]).

use std::collections::BTreeSet;
use std::fmt;

use rand::SeedableRng;
use rand::seq::index::sample as sample_indices;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::rank::RankRule;

/// The most blocks or tensors a space may have, so `|S|` fits in a `u128` and a subset in a mask.
pub const MAX_AXIS: usize = 24;

/// The blocks, tensor kinds and ranks a design space ranges over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesignSpace {
    /// Block indices (`layers.{i}.`), ascending.
    pub blocks: Vec<usize>,
    /// Tensor kinds as layer-name suffixes (`self_attn.q_proj`, `attention.self.query`).
    pub tensors: Vec<String>,
    /// Ranks, ascending.
    pub ranks: Vec<usize>,
}

/// One point of a design space: the uncompressed model, or γ = (rank, blocks, tensors).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DesignPoint {
    Original,
    Compressed {
        rank: usize,
        blocks: Vec<usize>,
        tensors: Vec<String>,
    },
}

impl DesignSpace {
    /// A space over `blocks`, `tensors` and `ranks` (duplicates dropped, sorted); each must be
    /// non-empty, with at most [`MAX_AXIS`] blocks and tensors, and ranks of at least 1.
    pub fn new(
        blocks: impl IntoIterator<Item = usize>,
        tensor_kinds: impl IntoIterator<Item = impl Into<String>>,
        ranks: impl IntoIterator<Item = usize>,
    ) -> Result<Self> {
        let blocks: Vec<usize> = blocks
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut tensors: Vec<String> = Vec::new();
        for tensor in tensor_kinds {
            let tensor = tensor.into();
            if !tensors.contains(&tensor) {
                tensors.push(tensor);
            }
        }
        let ranks: Vec<usize> = ranks
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let invalid = |reason: &str| Error::InvalidDesignSpace {
            reason: reason.into(),
        };
        if blocks.is_empty() || tensors.is_empty() || ranks.is_empty() {
            return Err(invalid(
                "it needs at least one block, one tensor and one rank",
            ));
        }
        if blocks.len() > MAX_AXIS || tensors.len() > MAX_AXIS {
            return Err(invalid(
                "at most 24 blocks and 24 tensors (|S| grows as 2^L·2^T)",
            ));
        }
        if ranks.contains(&0) {
            return Err(invalid("rank 0 keeps nothing; ranks start at 1"));
        }
        Ok(Self {
            blocks,
            tensors,
            ranks,
        })
    }

    /// `|S| = (2^L − 1)·(2^T − 1)·R + 1`.
    pub fn size(&self) -> u128 {
        self.compressed_points() + 1
    }

    fn compressed_points(&self) -> u128 {
        let subsets = |n: usize| (1u128 << n) - 1;
        subsets(self.blocks.len()) * subsets(self.tensors.len()) * self.ranks.len() as u128
    }

    /// Point number `index` (0 is the original model); mixed radix over (rank, tensor subset,
    /// block subset), the block subset varying slowest, each subset read as a bit mask + 1.
    pub fn point(&self, index: u128) -> Result<DesignPoint> {
        if index >= self.size() {
            return Err(Error::InvalidDesignSpace {
                reason: format!("point {index} is outside a space of {} points", self.size()),
            });
        }
        if index == 0 {
            return Ok(DesignPoint::Original);
        }
        let mut rest = index - 1;
        let ranks = self.ranks.len() as u128;
        let tensor_subsets = (1u128 << self.tensors.len()) - 1;
        let rank = self.ranks[(rest % ranks) as usize];
        rest /= ranks;
        let tensor_mask = rest % tensor_subsets + 1;
        let block_mask = rest / tensor_subsets + 1;
        Ok(DesignPoint::Compressed {
            rank,
            blocks: pick(&self.blocks, block_mask),
            tensors: pick(&self.tensors, tensor_mask),
        })
    }

    /// Every point in index order (only sensible for small spaces: see [`DesignSpace::size`]).
    pub fn iter(&self) -> impl Iterator<Item = DesignPoint> + '_ {
        (0..self.size()).filter_map(|i| self.point(i).ok())
    }

    /// `count` distinct points drawn uniformly with `seed` (all of them when `count ≥ |S|`), in
    /// index order; the original model is always among them, as the reference the rest are
    /// judged against.
    pub fn sample(&self, count: usize, seed: u64) -> Vec<DesignPoint> {
        let compressed = self.compressed_points();
        let wanted = count.saturating_sub(1) as u128;
        let mut indices: Vec<u128> = if wanted >= compressed {
            (1..=compressed).collect()
        } else if compressed <= usize::MAX as u128 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            sample_indices(&mut rng, compressed as usize, wanted as usize)
                .into_iter()
                .map(|i| i as u128 + 1)
                .collect()
        } else {
            Vec::new()
        };
        indices.sort_unstable();
        std::iter::once(0)
            .chain(indices)
            .filter_map(|i| self.point(i).ok())
            .collect()
    }

    /// The grid `ranks × block_sets × tensor_sets` (each set must be drawn from this space),
    /// after the original model.
    pub fn grid(
        &self,
        block_sets: &[Vec<usize>],
        tensor_sets: &[Vec<String>],
    ) -> Result<Vec<DesignPoint>> {
        let mut points = vec![DesignPoint::Original];
        for blocks in block_sets {
            self.check_subset("block", blocks, &self.blocks)?;
            for tensors in tensor_sets {
                self.check_subset("tensor", tensors, &self.tensors)?;
                for &rank in &self.ranks {
                    points.push(DesignPoint::Compressed {
                        rank,
                        blocks: blocks.clone(),
                        tensors: tensors.clone(),
                    });
                }
            }
        }
        Ok(points)
    }

    fn check_subset<T: PartialEq + fmt::Debug>(
        &self,
        what: &str,
        subset: &[T],
        all: &[T],
    ) -> Result<()> {
        if subset.is_empty() {
            return Err(Error::InvalidDesignSpace {
                reason: format!("an empty {what} set compresses nothing"),
            });
        }
        match subset.iter().find(|x| !all.contains(x)) {
            Some(odd) => Err(Error::InvalidDesignSpace {
                reason: format!("{what} {odd:?} is not in the space's {what}s {all:?}"),
            }),
            None => Ok(()),
        }
    }
}

impl DesignPoint {
    /// A stable text key (`original`, `r8 blocks=0,1 tensors=q_proj,v_proj`): what a resumed
    /// sweep recognises a finished point by.
    pub fn key(&self) -> String {
        match self {
            DesignPoint::Original => "original".into(),
            DesignPoint::Compressed {
                rank,
                blocks,
                tensors,
            } => {
                let blocks: Vec<String> = blocks.iter().map(usize::to_string).collect();
                format!(
                    "r{rank} blocks={} tensors={}",
                    blocks.join(","),
                    tensors.join(",")
                )
            }
        }
    }

    /// The plan that compresses this point's layers (`*.{tensor}` in its blocks) with `rule`,
    /// or `None` for the original model.
    pub fn plan(&self, rule: RankRule) -> Option<Plan> {
        match self {
            DesignPoint::Original => None,
            DesignPoint::Compressed {
                blocks, tensors, ..
            } => Some(
                Plan::new(rule)
                    .select(tensors.iter().map(|t| format!("*.{t}")))
                    .layers(blocks.iter().copied()),
            ),
        }
    }

    pub fn rank(&self) -> Option<usize> {
        match self {
            DesignPoint::Original => None,
            DesignPoint::Compressed { rank, .. } => Some(*rank),
        }
    }
}

impl fmt::Display for DesignPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The last part of a tensor kind (`q_proj` for `self_attn.q_proj`), for keys and plots.
pub fn short_tensor(tensor: &str) -> &str {
    tensor.rsplit('.').next().unwrap_or(tensor)
}

/// The items of `all` whose bit is set in `mask`.
fn pick<T: Clone>(all: &[T], mask: u128) -> Vec<T> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, x)| x.clone())
        .collect()
}
