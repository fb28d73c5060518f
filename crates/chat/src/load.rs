//! A load test for the HTTP API: `concurrency` clients, each on its own keep-alive connection,
//! send `total` chat requests between them and time each one. Loopback use only: it is a
//! benchmark of this server, not a traffic generator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::error::{Result, invalid};

/// What a load test measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests: usize,
    pub concurrency: usize,
    /// Responses with status 200 and a JSON body holding a reply.
    pub ok: usize,
    /// Everything else: other statuses, connection failures, unreadable bodies.
    pub errors: usize,
    /// Responses by status (0 for a failure without a response).
    pub statuses: BTreeMap<u16, usize>,
    pub seconds: f64,
    /// Latency percentiles of all requests, in seconds.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub first_error: Option<String>,
}

impl LoadReport {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests at concurrency {}: {} ok, {} errors in {:.2} s = {:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.requests,
            self.concurrency,
            self.ok,
            self.errors,
            self.seconds,
            self.requests_per_second(),
            self.p50 * 1e3,
            self.p90 * 1e3,
            self.p99 * 1e3,
            self.max * 1e3
        )
    }
}

struct Outcome {
    seconds: f64,
    status: u16,
    error: Option<String>,
}

/// Sends `total` POST /v1/chat requests to `addr` (a loopback address) from `concurrency`
/// connections, cycling through `messages`; client `i` uses session `load-i`.
pub async fn run(
    addr: SocketAddr,
    total: usize,
    concurrency: usize,
    messages: &[String],
) -> Result<LoadReport> {
    if !addr.ip().is_loopback() {
        return Err(invalid(format!(
            "{addr} is not a loopback address: the load test only runs against this machine"
        )));
    }
    if total == 0 || concurrency == 0 || messages.is_empty() {
        return Err(invalid(
            "the load test needs at least one request, one client and one message",
        ));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(messages.to_vec());
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|client| {
            let (next, messages) = (Arc::clone(&next), Arc::clone(&messages));
            tokio::spawn(async move { client_loop(addr, client, total, &next, &messages).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(total);
    for client in clients {
        outcomes.extend(
            client
                .await
                .map_err(|e| invalid(format!("a load client panicked: {e}")))?,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    summarize(outcomes, concurrency, seconds)
}

fn summarize(outcomes: Vec<Outcome>, concurrency: usize, seconds: f64) -> Result<LoadReport> {
    let mut statuses = BTreeMap::new();
    let mut first_error = None;
    let mut ok = 0;
    for outcome in &outcomes {
        *statuses.entry(outcome.status).or_insert(0) += 1;
        match &outcome.error {
            None => ok += 1,
            Some(e) => {
                first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    let latencies: Vec<f64> = outcomes.iter().map(|o| o.seconds).collect();
    let pct = |q| eval::timing::percentile(&latencies, q);
    Ok(LoadReport {
        requests: outcomes.len(),
        concurrency,
        ok,
        errors: outcomes.len() - ok,
        statuses,
        seconds,
        p50: pct(50.0)?,
        p90: pct(90.0)?,
        p99: pct(99.0)?,
        max: latencies.iter().copied().fold(0.0, f64::max),
        first_error,
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> std::result::Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn client_loop(
    addr: SocketAddr,
    client: usize,
    total: usize,
    next: &AtomicUsize,
    messages: &[String],
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut sender: Option<Sender> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return outcomes;
        }
        let body = serde_json::json!({
            "session_id": format!("load-{client}"),
            "message": messages[i % messages.len()],
        })
        .to_string();
        let started = Instant::now();
        let result = send(addr, &mut sender, body).await;
        let seconds = started.elapsed().as_secs_f64();
        outcomes.push(match result {
            Ok((200, _)) => Outcome {
                seconds,
                status: 200,
                error: None,
            },
            Ok((status, text)) => Outcome {
                seconds,
                status,
                error: Some(format!("status {status}: {text}")),
            },
            Err(e) => {
                sender = None;
                Outcome {
                    seconds,
                    status: 0,
                    error: Some(e),
                }
            }
        });
    }
}

async fn send(
    addr: SocketAddr,
    sender: &mut Option<Sender>,
    body: String,
) -> std::result::Result<(u16, String), String> {
    if sender.is_none() {
        *sender = Some(connect(addr).await?);
    }
    let Some(s) = sender.as_mut() else {
        return Err("no connection".into());
    };
    s.ready()
        .await
        .map_err(|e| format!("connection lost: {e}"))?;
    let request = Request::post("/v1/chat")
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = s
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("cannot read the response: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if status == 200 {
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("the reply is not JSON: {e}"))?;
        if !json["reply"].is_string() {
            return Err(format!("the reply has no \"reply\" text: {text}"));
        }
    }
    Ok((status, text))
}
