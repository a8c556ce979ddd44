//! The floor of `bench/run.sh`'s refused-login row: bare axum answering `POST /auth/login` with
//! the very answer Rampart gives a client over its login budget (the same status, headers and
//! body, byte for byte but for the request id and the date), and nothing else: no budget, no
//! log line, no request id made. A POST whose body is read, and an answer of some 800 bytes,
//! cost hyper and the kernel more than a GET of a 13-byte hello, so this shows how much of the
//! row's distance to the hello is the answer itself and how much is Rampart's work (issue 17).
//! `bench/run.sh` checks that both answers carry the same headers and body before it measures.
//!
//! `bench-refusal 127.0.0.1:PORT`. The runtime is Tokio's multi-threaded one, as the hello's.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::post;

/// Rampart's 429 for the per-IP login budget at its default (10 a minute), headers in its order.
const HEADERS: [(&str, &str); 13] = [
    ("content-type", "application/problem+json"),
    ("retry-after", "1"),
    ("ratelimit-policy", "\"login-ip\";q=10;w=60"),
    ("ratelimit", "\"login-ip\";r=0;t=1"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
    ("cache-control", "no-store"),
    ("x-request-id", "00000000-0000-4000-8000-000000000000"),
];
const BODY: &str = r#"{"type":"https://rampart.dev/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"too many requests: retry in 1 s"}"#;

/// The body is taken (read to its end) as Rampart reads a refused request's body.
async fn refuse(_body: Bytes) -> (StatusCode, HeaderMap, &'static str) {
    let mut headers = HeaderMap::with_capacity(HEADERS.len());
    for (name, value) in HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    (StatusCode::TOO_MANY_REQUESTS, headers, BODY)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args().nth(1).ok_or("usage: bench-refusal ADDR:PORT")?.parse()?;
    let app = Router::new().route("/auth/login", post(refuse));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
