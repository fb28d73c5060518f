//! The HTTP API on a real server on a free loopback port: the happy path through a slot question,
//! out-of-scope hand-off, the page and health, and malformed requests of every kind, each
//! answered with the right status and a JSON error that names the problem.

#![allow(clippy::unwrap_used)]
mod common;

use chat::dialogue::Policy;
use chat::server::Limits;
use common::{TestServer, post_chat, raw, request};

fn server() -> TestServer {
    TestServer::start(Limits::default(), Policy::default())
}

#[test]
fn a_card_that_has_not_arrived_asks_for_the_order_date_then_answers_with_it() {
    let server = server();
    let first = post_chat(
        server.addr,
        "s1",
        "I ordered a new card two weeks ago and it still hasn't come",
    );
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.content_type.starts_with("application/json"));
    let json = first.json();
    assert_eq!(json["intent"], "card_arrival", "{json}");
    assert_eq!(json["action"], "ask_slot", "{json}");
    assert_eq!(json["session_id"], "s1");
    let confidence = json["confidence"].as_f64().unwrap();
    let alternatives = json["alternatives"].as_array().unwrap();
    assert_eq!(alternatives.len(), 3, "{json}");
    for alternative in alternatives {
        let p = alternative["confidence"].as_f64().unwrap();
        assert!(p <= confidence && p >= 0.0, "{json}");
        assert_ne!(alternative["intent"], "card_arrival");
    }
    let second = post_chat(server.addr, "s1", "on the 3rd of March");
    let json = second.json();
    assert_eq!(json["action"], "answer", "{json}");
    assert_eq!(json["intent"], "card_arrival");
    assert!(
        json["reply"].as_str().unwrap().contains("the 3rd of March"),
        "the reply fills the slot: {json}"
    );
    // Another session is independent: the same date alone is not an answer to anything there.
    let other = post_chat(server.addr, "s2", "on the 3rd of March").json();
    assert_ne!(other["reply"], json["reply"]);
}

#[test]
fn out_of_scope_twice_hands_off_to_a_human() {
    // Two held-out out-of-scope texts the model rejects (how many it rejects is the evaluation's
    // business; this test is about what the API does then).
    let model = common::baseline_model();
    let oos = chat::data::Catalog::embedded().unwrap().split().oos_test;
    let rejected: Vec<&String> = oos
        .iter()
        .filter(|t| !model.predict(&[t.as_str()]).unwrap()[0].in_scope)
        .take(2)
        .collect();
    assert_eq!(
        rejected.len(),
        2,
        "the baseline rejects fewer than 2 of {} out-of-scope texts",
        oos.len()
    );
    let server = server();
    let first = post_chat(server.addr, "oos", rejected[0]).json();
    assert_eq!(first["intent"], serde_json::Value::Null, "{first}");
    assert_eq!(first["action"], "rephrase");
    assert_eq!(first["handoff"], false);
    assert_eq!(
        first["alternatives"].as_array().unwrap().len(),
        3,
        "best guesses: {first}"
    );
    let second = post_chat(server.addr, "oos", rejected[1]).json();
    assert_eq!(second["action"], "handoff", "{second}");
    assert_eq!(second["handoff"], true);
}

#[test]
fn health_and_page_are_served() {
    let server = server();
    let health = request(server.addr, "GET", "/health", b"");
    assert_eq!(health.status, 200);
    let json = health.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["intents"], 24);
    let page = request(server.addr, "GET", "/", b"");
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("<label for=\"message\""));
    assert!(page.body.contains("/v1/chat"));
}

/// Every malformed request gets its status and a JSON error saying what is wrong.
#[test]
fn malformed_requests_are_refused_with_a_message() {
    let server = server();
    let addr = server.addr;
    let expect = |response: common::Response, status: u16, needle: &str| {
        assert_eq!(response.status, status, "{}", response.body);
        let error = response.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains(needle),
            "{error:?} should mention {needle:?}"
        );
    };
    expect(
        request(addr, "POST", "/v1/chat", b"{not json"),
        400,
        "must be JSON",
    );
    expect(request(addr, "POST", "/v1/chat", b""), 400, "EOF");
    expect(
        request(addr, "POST", "/v1/chat", b"[1, 2]"),
        400,
        "must be JSON",
    );
    expect(
        request(addr, "POST", "/v1/chat", br#"{"session_id": "a"}"#),
        400,
        "missing field `message`",
    );
    expect(
        request(addr, "POST", "/v1/chat", br#"{"message": "hi"}"#),
        400,
        "missing field `session_id`",
    );
    expect(
        request(
            addr,
            "POST",
            "/v1/chat",
            br#"{"session_id": "a", "message": 5}"#,
        ),
        400,
        "invalid type",
    );
    expect(
        request(
            addr,
            "POST",
            "/v1/chat",
            br#"{"session_id": "a", "message": "hi", "extra": 1}"#,
        ),
        400,
        "unknown field `extra`",
    );
    expect(
        request(addr, "POST", "/v1/chat", b"\xff\xfe{}"),
        400,
        "must be JSON",
    );
    expect(post_chat(addr, "a", "   "), 400, "message is empty");
    expect(post_chat(addr, "", "hello"), 400, "session_id");
    expect(post_chat(addr, "has space", "hello"), 400, "session_id");
    expect(post_chat(addr, &"x".repeat(65), "hello"), 400, "session_id");
    expect(
        post_chat(addr, "a", &"é".repeat(1001)),
        400,
        "1001 characters",
    );
    let huge = format!(
        r#"{{"session_id": "a", "message": "{}"}}"#,
        "a".repeat(20_000)
    );
    expect(
        request(addr, "POST", "/v1/chat", huge.as_bytes()),
        413,
        "larger than 16384 bytes",
    );
    expect(request(addr, "GET", "/nowhere", b""), 404, "POST /v1/chat");
    assert_eq!(request(addr, "GET", "/v1/chat", b"").status, 405);
    // A request line that is not HTTP at all: the server answers 400 and stays up.
    let garbage = raw(addr, b"HELLO\r\n\r\n");
    assert_eq!(garbage.status, 400);
    assert_eq!(post_chat(addr, "after", "hi there").status, 200);
}

#[test]
fn a_full_queue_answers_503_and_shutdown_is_graceful() {
    let limits = Limits {
        queue: 1,
        max_batch: 1,
        ..Limits::default()
    };
    let server = TestServer::start(limits, Policy::default());
    let addr = server.addr;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                scope.spawn(move || {
                    post_chat(addr, &format!("q{i}"), "my card was declined at the shop").status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.contains(&503),
        "24 at once into a queue of 1 must overflow: {statuses:?}"
    );
    server.shutdown().expect("the server stops cleanly");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after shutdown"
    );
}

#[test]
fn a_background_server_answers_then_shuts_down_and_frees_its_port() {
    let model = common::baseline_model();
    let catalog = chat::data::Catalog::embedded().unwrap();
    let dialogue = chat::dialogue::Dialogue::new(&catalog, model.labels(), Policy::default());
    let bot =
        std::sync::Arc::new(chat::server::Bot::new(model, dialogue, Limits::default()).unwrap());
    let server = chat::server::Background::start(bot, "127.0.0.1:0").unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    let reply = post_chat(addr, "b1", "I want to talk to a real person");
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.shutdown().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "{addr} still accepts"
    );
}
