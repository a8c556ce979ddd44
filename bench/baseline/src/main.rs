//! The reference server of `bench/run.sh`: axum's hello world, nothing else. Every figure the
//! bench prints is a ratio to this server's `GET /` in the same run, so that it says what
//! Rampart's work costs over the floor of the same framework on the same machine.
//!
//! `bench-baseline 127.0.0.1:PORT`. The runtime is Tokio's multi-threaded one with one worker per
//! core, as Rampart's.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args().nth(1).ok_or("usage: bench-baseline ADDR:PORT")?.parse()?;
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
