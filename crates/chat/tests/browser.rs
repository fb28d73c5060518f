//! The chat page in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol by `tests/browser/chat_page.mjs` (Node, no packages), loads the page from a
//! real server, types a message with the keyboard, presses Enter and reads the bot's reply; the
//! screenshot is kept in the target directory.

#![allow(clippy::unwrap_used)]
mod common;

use std::path::PathBuf;
use std::process::Command;

use chat::dialogue::Policy;
use chat::server::Limits;
use common::TestServer;

#[test]
fn the_page_sends_a_message_and_shows_the_reply_in_chromium() {
    let server = TestServer::start(Limits::default(), Policy::default());
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/chat_page.mjs");
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chat-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg("--experimental-websocket")
        .arg(&script)
        .arg(format!("http://{}/", server.addr))
        .arg(&screenshot)
        .arg("My card was declined at the supermarket")
        .output()
        .expect("node runs: the browser test needs Node.js 20+ and Debian's chromium (apt-get install nodejs chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("the script printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(result["intent"], "card_declined", "{result}");
    assert_eq!(result["action"], "answer", "{result}");
    assert_eq!(result["error"], serde_json::Value::Null);
    assert!(
        result["reply"].as_str().unwrap_or_default().len() > 20,
        "{result}"
    );
    assert_eq!(
        result["activeElementId"], "message",
        "focus returns to the input"
    );
    assert_eq!(result["labelled"], true);
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", screenshot.display());
}
