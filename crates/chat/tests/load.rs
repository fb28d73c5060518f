//! The load test the issue asks for: 10,000 requests at concurrency 64 against a real server on
//! loopback, all answered 200; prints p50/p99 and requests per second (figures for BENCHMARKS.md
//! come from the release build, `lowrank chat load`).

#![allow(clippy::unwrap_used)]
mod common;

use chat::data::Catalog;
use chat::dialogue::Policy;
use chat::server::Limits;
use common::TestServer;

#[test]
fn ten_thousand_requests_at_concurrency_64_without_an_error() {
    let server = TestServer::start(Limits::default(), Policy::default());
    let messages: Vec<String> = Catalog::embedded()
        .unwrap()
        .split()
        .test
        .into_iter()
        .map(|e| e.text)
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime
        .block_on(chat::load::run(server.addr, 10_000, 64, &messages))
        .unwrap();
    println!("{}", report.summary());
    assert_eq!(report.requests, 10_000);
    assert_eq!(report.errors, 0, "first error: {:?}", report.first_error);
    assert_eq!(report.statuses.get(&200), Some(&10_000));
    assert!(report.p50 <= report.p99 && report.p99 <= report.max);
    server.shutdown().unwrap();
}

#[test]
fn the_load_test_refuses_other_machines() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(chat::load::run(
            "10.1.2.3:80".parse().unwrap(),
            1,
            1,
            &["hi".into()],
        ))
        .unwrap_err();
    assert!(
        error.to_string().contains("not a loopback address"),
        "{error}"
    );
}
