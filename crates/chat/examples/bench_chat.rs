//! Model-only latency of an intent model, without HTTP: one text at a time (what a lone user
//! waits for) and batches of 32 (what the server's batching reaches under load).
//!
//! cargo run --release -p chat --example bench_chat -- MODEL_DIR ENCODER_DIR [cpu|cuda]

use std::path::Path;

use chat::data::Catalog;
use chat::model::IntentModel;
use models::candle::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model_dir), Some(encoder_dir)) = (args.get(1), args.get(2)) else {
        return Err("usage: bench_chat MODEL_DIR ENCODER_DIR [cpu|cuda]".into());
    };
    let device = match args.get(3).map(String::as_str) {
        Some("cuda") => Device::new_cuda(0)?,
        _ => Device::Cpu,
    };
    let model = IntentModel::load(Path::new(model_dir), Some(Path::new(encoder_dir)), &device)?;
    let texts: Vec<String> = Catalog::embedded()?
        .split()
        .test
        .into_iter()
        .map(|e| e.text)
        .collect();
    let mut i = 0;
    let single = eval::timing::measure(20, 300, || {
        i += 1;
        classify(&model, &[texts[i % texts.len()].as_str()])
    })?;
    println!("one text:     {}", single.summary());
    let batch: Vec<&str> = texts.iter().take(32).map(String::as_str).collect();
    let batched = eval::timing::measure(3, 30, || classify(&model, &batch))?;
    println!(
        "batch of 32:  {}; {:.0} texts/s",
        batched.summary(),
        batched.throughput(32)
    );
    Ok(())
}

/// One prediction, its error in the form `eval::timing::measure` carries.
fn classify(model: &IntentModel, texts: &[&str]) -> eval::Result<()> {
    model
        .predict(texts)
        .map(|_| ())
        .map_err(|e| eval::Error::InvalidArgument {
            name: "predict",
            value: String::new(),
            reason: e.to_string(),
        })
}
