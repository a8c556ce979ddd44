//! The accept loop. Our own rather than `axum::serve` because it must bound the time a client
//! may take to send its request head (`limits.header_read_timeout`): without that, a slowloris
//! client holds a connection and a task open forever with a byte every few seconds.
//!
//! With TLS ([`crate::tls`]) the handshake runs in the connection's own task, bounded by
//! [`TLS_HANDSHAKE_TIMEOUT`]: a slow or broken client (or plain HTTP sent to the TLS port, which
//! fails the handshake at its first bytes and is closed without a response) costs one task for
//! at most that long and never holds up the accept loop.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use crate::extract::ClientIp;

/// How long a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, over TLS when `tls` is given.
pub async fn serve<A>(
    listener: TcpListener,
    app: A,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    A: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        // Read buffer bound; hyper itself answers 431 to request heads past its own limit.
        .max_buf_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ClientIp(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let (http, watcher) = (http.clone(), graceful.watcher());
        let Some(tls) = tls.clone() else {
            tokio::spawn(async move { serve_io(&http, watcher, stream, service).await });
            continue;
        };
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                // A failed handshake is the client's business (a scanner, plain HTTP, an old
                // client): logged at debug level only, and never with anything it sent.
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %peer, "TLS handshake timed out");
                    return;
                }
            };
            serve_io(&http, watcher, stream, service).await;
        });
    }
    tracing::info!("shutting down: waiting for open requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("shutdown timed out; closing connections"),
    }
    Ok(())
}

async fn serve_io<I, S>(
    http: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: S,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = watcher.watch(http.serve_connection(TokioIo::new(io), service)).await;
}
