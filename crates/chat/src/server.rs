//! `lowrank serve`: the chatbot over HTTP (axum). Only this module and [`crate::load`] know HTTP.
//!
//! - `POST /v1/chat` `{session_id, message}` → `{session_id, reply, intent, confidence,
//!   alternatives, handoff, action}`; bad JSON or fields 400, a body over the limit 413, a full
//!   queue 503, each with `{"error": "…"}`.
//! - `GET /health`, `GET /` (the chat page, compiled in).
//!
//! Requests are classified by one worker thread that takes whatever has queued up while it was
//! busy as one batch (up to `max_batch`): under load a forward pass serves many requests, idle it
//! serves one at once, and no timer adds latency.

use std::future::Future;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::dialogue::{Action, Dialogue};
use crate::model::{IntentModel, Prediction};

/// The chat page: one static file, no build step.
pub const INDEX_HTML: &str = include_str!("../web/index.html");

/// Limits of the service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest request body in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Longest message in characters (400 beyond).
    pub max_message_chars: usize,
    /// Requests waiting for the model (503 beyond).
    pub queue: usize,
    /// Most texts in one forward pass.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_message_chars: 1000,
            queue: 1024,
            max_batch: 32,
        }
    }
}

struct Job {
    text: String,
    reply: oneshot::Sender<Result<Prediction, String>>,
}

/// The model behind a queue, served by one thread in batches.
pub struct Classifier {
    jobs: mpsc::SyncSender<Job>,
}

impl Classifier {
    /// Starts the worker thread; it ends when the last `Classifier` handle is dropped.
    pub fn spawn(model: Arc<IntentModel>, limits: Limits) -> crate::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(limits.queue.max(1));
        let max_batch = limits.max_batch.max(1);
        std::thread::Builder::new()
            .name("intent-model".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let texts: Vec<&str> = batch.iter().map(|j| j.text.as_str()).collect();
                    match model.predict(&texts) {
                        Ok(predictions) => {
                            for (job, p) in batch.into_iter().zip(predictions) {
                                let _ = job.reply.send(Ok(p));
                            }
                        }
                        Err(e) => {
                            for job in batch {
                                let _ = job.reply.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .map_err(|e| crate::error::invalid(format!("cannot start the model thread: {e}")))?;
        Ok(Self { jobs })
    }

    async fn classify(&self, text: String) -> Result<Prediction, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { text, reply })
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => ApiError::busy(),
                mpsc::TrySendError::Disconnected(_) => {
                    ApiError::internal("the model thread has stopped")
                }
            })?;
        answer
            .await
            .map_err(|_| ApiError::internal("the model thread dropped the request"))?
            .map_err(|e| ApiError::internal(format!("the model failed: {e}")))
    }
}

/// What the handlers share.
pub struct Bot {
    classifier: Classifier,
    dialogue: Mutex<Dialogue>,
    labels: Vec<String>,
    limits: Limits,
    description: serde_json::Value,
}

impl Bot {
    pub fn new(model: IntentModel, dialogue: Dialogue, limits: Limits) -> crate::Result<Self> {
        let labels = model.labels().to_vec();
        let card = model.card();
        let description = serde_json::json!({
            "dataset": card.dataset,
            "intents": labels.len(),
            "adaptation": card.adaptation,
            "threshold": card.threshold,
            "device": if model.device().is_cuda() { "cuda" } else { "cpu" },
        });
        Ok(Self {
            classifier: Classifier::spawn(Arc::new(model), limits)?,
            dialogue: Mutex::new(dialogue),
            labels,
            limits,
            description,
        })
    }

    /// One exchange: classify, then let the dialogue answer.
    pub async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, ApiError> {
        request.validate(self.limits.max_message_chars)?;
        let prediction = self.classifier.classify(request.message.clone()).await?;
        let turn = self
            .dialogue
            .lock()
            .map_err(|_| ApiError::internal("the session store is poisoned"))?
            .respond(&request.session_id, &request.message, &prediction);
        let scored = |(label, p): (usize, f32)| Scored {
            intent: self.labels[label].clone(),
            confidence: p,
        };
        // Out of scope, the best guesses are the alternatives; otherwise the runners-up.
        let alternatives = if prediction.in_scope {
            prediction
                .alternatives
                .iter()
                .copied()
                .map(scored)
                .collect()
        } else {
            std::iter::once((prediction.label, prediction.confidence))
                .chain(prediction.alternatives.iter().copied())
                .take(crate::model::ALTERNATIVES)
                .map(scored)
                .collect()
        };
        Ok(ChatResponse {
            session_id: request.session_id,
            handoff: turn.handoff(),
            reply: turn.reply,
            intent: turn.intent,
            confidence: prediction.confidence,
            alternatives,
            action: turn.action,
        })
    }

    fn sessions(&self) -> usize {
        self.dialogue.lock().map_or(0, |d| d.sessions())
    }

    fn expire_sessions(&self) {
        if let Ok(mut dialogue) = self.dialogue.lock() {
            dialogue.expire(std::time::Instant::now());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub session_id: String,
    pub message: String,
}

impl ChatRequest {
    fn validate(&self, max_chars: usize) -> Result<(), ApiError> {
        let id = &self.session_id;
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ApiError::bad_request(
                "session_id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'",
            ));
        }
        if self.message.trim().is_empty() {
            return Err(ApiError::bad_request("message is empty"));
        }
        let chars = self.message.chars().count();
        if chars > max_chars {
            return Err(ApiError::bad_request(format!(
                "message has {chars} characters; the limit is {max_chars}"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub intent: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse {
    pub session_id: String,
    pub reply: String,
    pub intent: Option<String>,
    pub confidence: f32,
    pub alternatives: Vec<Scored>,
    pub handoff: bool,
    pub action: Action,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn busy() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server is busy: too many requests are waiting; retry shortly".into(),
        }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// The routes, with the body limit.
pub fn router(bot: Arc<Bot>) -> Router {
    let limit = bot.limits.max_body_bytes;
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/health", get(health))
        .route("/v1/chat", post(chat))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: "no such page: the API is POST /v1/chat and GET /health".into(),
            }
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(bot)
}

async fn health(State(bot): State<Arc<Bot>>) -> Json<serde_json::Value> {
    let mut body = bot.description.clone();
    body["status"] = "ok".into();
    body["sessions"] = bot.sessions().into();
    Json(body)
}

async fn chat(
    State(bot): State<Arc<Bot>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ChatResponse>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the request body is larger than {} bytes",
                bot.limits.max_body_bytes
            ),
        },
        status => ApiError {
            status,
            message: rejection.body_text(),
        },
    })?;
    let request: ChatRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be JSON {{\"session_id\": \"…\", \"message\": \"…\"}}: {e}"
        ))
    })?;
    Ok(Json(bot.chat(request).await?))
}

/// Serves `bot` on `listener` until `shutdown` resolves, then finishes the requests in flight.
/// Sessions silent past their TTL are swept once a minute.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bot: Arc<Bot>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = {
        let bot = Arc::clone(&bot);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                bot.expire_sessions();
            }
        })
    };
    let result = axum::serve(listener, router(bot))
        .with_graceful_shutdown(shutdown)
        .await;
    sweeper.abort();
    result
}

/// A server on its own thread and tokio runtime, for callers that are not async (a notebook, a
/// test): [`Background::start`] binds (port 0 picks a free one), [`Background::shutdown`] stops
/// it gracefully and waits; dropping it does the same.
pub struct Background {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Background {
    /// Serves `bot` on `address` (`127.0.0.1:0` for any free loopback port).
    pub fn start(bot: Arc<Bot>, address: &str) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chat-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Runtime::new()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    serve(listener, bot, async {
                        let _ = stopped.await;
                    })
                    .await
                })
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes the requests in flight, and returns the server's result.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
