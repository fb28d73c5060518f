//! Which layers of a model to compress, by which rank rule and [`Method`].
//!
//! Layers are chosen by their checkpoint names (`encoder.layers.3.self_attn.q_proj`) with simple
//! globs, where `*` matches any run of characters, dots included (`*.self_attn.*_proj`,
//! `encoder.layer.*.attention.self.query`); a pattern without `*` is an exact name. A layer-index
//! filter then keeps only the blocks wanted (`layers.{i}.` in BART, `layer.{i}.` in BERT), the
//! usual way to leave the first and last blocks dense. A pattern that matches nothing is an error,
//! never an empty compression: a typo must not look like a model that compresses for free.

use models::Linears;

use crate::error::{Error, Result};
use crate::method::Method;
use crate::rank::RankRule;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    patterns: Vec<String>,
    layer_indices: Option<Vec<usize>>,
    rule: RankRule,
    method: Method,
}

impl Plan {
    /// Every linear layer of the model, at `rule`'s rank, by plain SVD.
    pub fn new(rule: RankRule) -> Self {
        Self {
            patterns: vec!["*".into()],
            layer_indices: None,
            rule,
            method: Method::Svd,
        }
    }

    /// Factorizes by `method` (an activation-aware one needs [`crate::calibrate`] first and
    /// [`crate::compress_model_calibrated`]).
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The same layers at another rank rule.
    pub fn with_rule(mut self, rule: RankRule) -> Self {
        self.rule = rule;
        self
    }

    /// Only layers matching one of `patterns` (globs or exact names); replaces earlier patterns.
    pub fn select<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.patterns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Only layers in these blocks (the number after `layers.` or `layer.`).
    pub fn layers(mut self, indices: impl IntoIterator<Item = usize>) -> Self {
        self.layer_indices = Some(indices.into_iter().collect());
        self
    }

    pub fn rule(&self) -> RankRule {
        self.rule
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The names of the layers this plan selects, in model order; an error naming the first
    /// pattern (or the index filter) that selects nothing, with the model's layer names as globs.
    pub fn resolve<M: Linears + ?Sized>(&self, model: &M) -> Result<Vec<String>> {
        self.rule.validate()?;
        self.method.validate()?;
        let names: Vec<String> = model.linears().into_iter().map(|(n, _)| n).collect();
        if self.patterns.is_empty() {
            return Err(no_match("an empty list of patterns", &names));
        }
        for pattern in &self.patterns {
            if !names.iter().any(|n| glob_match(pattern, n)) {
                return Err(no_match(&format!("pattern {pattern:?}"), &names));
            }
        }
        let selected: Vec<String> = names
            .iter()
            .filter(|n| self.patterns.iter().any(|p| glob_match(p, n)))
            .filter(|n| self.keeps_index(n))
            .cloned()
            .collect();
        if selected.is_empty() {
            let what = format!(
                "patterns {:?} in layers {:?}",
                self.patterns,
                self.layer_indices.as_deref().unwrap_or_default()
            );
            return Err(no_match(&what, &names));
        }
        Ok(selected)
    }

    fn keeps_index(&self, name: &str) -> bool {
        match &self.layer_indices {
            None => true,
            Some(indices) => layer_index(name).is_some_and(|i| indices.contains(&i)),
        }
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (none included).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was and the name position it currently absorbs up to (backtracking).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((star_pi, star_ni)) = star {
            pi = star_pi + 1;
            ni = star_ni + 1;
            star = Some((star_pi, star_ni + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The block number in a layer name: the number after `layers.` (BART) or `layer.` (BERT).
pub fn layer_index(name: &str) -> Option<usize> {
    let segments: Vec<&str> = name.split('.').collect();
    segments
        .windows(2)
        .find(|w| w[0] == "layers" || w[0] == "layer")
        .and_then(|w| w[1].parse().ok())
}

/// `name` with its block number replaced by `*`: one glob per kind of layer.
fn as_glob(name: &str) -> String {
    let mut previous = "";
    name.split('.')
        .map(|segment| {
            let out = if (previous == "layers" || previous == "layer")
                && segment.parse::<usize>().is_ok()
            {
                "*"
            } else {
                segment
            };
            previous = segment;
            out
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn no_match(what: &str, names: &[String]) -> Error {
    let mut globs: Vec<String> = Vec::new();
    for glob in names.iter().map(|n| as_glob(n)) {
        if !globs.contains(&glob) {
            globs.push(glob);
        }
    }
    let shown = globs.len().min(8);
    let mut examples = globs[..shown].join(", ");
    if globs.len() > shown {
        examples.push_str(", …");
    }
    Error::NoMatch {
        what: what.to_string(),
        count: names.len(),
        examples,
    }
}
