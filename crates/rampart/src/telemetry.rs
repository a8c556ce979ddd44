//! Structured logs: JSON lines on stdout by default. Request data reaches them only through typed
//! fields (escaped by the JSON formatter), never as raw text, and no handler logs a body, a
//! cookie or a header.
//!
//! Lines are written off the request path (issue 17: a synchronous write to stdout per request
//! cost `/healthz` about a third of its throughput). A thread that logs only formats its line and
//! queues it; a writer thread makes the system calls, in batches. There are two queues, because
//! not every line may be lost:
//!
//! - `warn` and `error` (internal errors with their cause, refused configuration, a hasher that
//!   could not lower its priority, ...) go through a lossless queue: when it is full the thread
//!   that logs waits, exactly as a direct write to a stalled stdout would make it wait. Nothing
//!   the operator must see is dropped.
//! - `info` and below (the access log: a line per request) go through a bounded lossy queue. When
//!   stdout cannot keep up (a stalled pipe or collector) a line that finds the queue full is
//!   dropped rather than slowing every request, and counted: `rampart_log_lines_dropped_total` on
//!   `/metrics`. Security events do not depend on these lines: they are rows of the audit log, in
//!   the database.
//!
//! [`Logging`] holds both writer threads; dropping it (at the end of `serve`) writes out what is
//! queued.

use std::io::{BufWriter, Write};

use rampart_core::config::{LogConfig, LogFormat};
use rampart_http::log_context::WithRequestId;
use tracing::Level;
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// The WebAuthn verifier's own events are off: they can describe what a client sent (a CBOR parse
/// error of an attestation object, say). A refused ceremony is logged by us, with webauthn-rs's
/// reason (a fixed message) and nothing of the client's data.
const QUIET: &str = "webauthn_rs_core=off,webauthn_rs=off";

/// Lines the lossy queue holds: about a third of a second of access log at 50 000 requests a
/// second. The queue's slots are allocated up front (~40 bytes each), and a queued line holds its
/// text, so the bound is also a memory bound.
const LOSSY_LINES: usize = 16_384;
/// Lines the lossless queue holds before a thread that logs a warning waits for the writer.
const LOSSLESS_LINES: usize = 4_096;
/// Lines are gathered into writes of up to this many bytes.
const WRITE_BUFFER: usize = 64 * 1024;

/// The logging writer threads, running while this lives. Dropping it writes out the queued lines
/// (tracing-appender waits up to about a second for them).
pub struct Logging {
    _lossless: WorkerGuard,
    _lossy: WorkerGuard,
    dropped: ErrorCounter,
}

impl Logging {
    /// A reader of the number of `info`-and-below lines dropped so far because their queue was
    /// full, for `/metrics`.
    pub fn dropped_lines(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let dropped = self.dropped.clone();
        move || u64::try_from(dropped.dropped_lines()).unwrap_or(u64::MAX)
    }
}

pub fn init(log: &LogConfig) -> Result<Logging, String> {
    let filter =
        EnvFilter::try_new(format!("{QUIET},{}", log.level)).map_err(|e| format!("config key `log.level`: {e}"))?;
    let stdout = || BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout());
    let (writer, logging) = writers(stdout(), stdout(), LOSSY_LINES);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    // Lines written while a request is served carry its id (`rampart_http::log_context`).
    let result = match log.format {
        LogFormat::Json => builder.json().event_format(WithRequestId::json()).try_init(),
        LogFormat::Pretty => builder.event_format(WithRequestId::text()).try_init(),
    };
    result.map_err(|e| format!("cannot start logging: {e}"))?;
    Ok(logging)
}

/// The writer of every line: `warn` and `error` to `lossless`, everything else to `lossy`, each
/// through its own queue and writer thread.
fn writers<W: Write + Send + 'static>(
    lossless: W,
    lossy: W,
    lossy_lines: usize,
) -> (impl for<'a> MakeWriter<'a> + Send + Sync + 'static, Logging) {
    let (lossless, lossless_guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOSSLESS_LINES)
        .thread_name("rampart-log-warn")
        .finish(lossless);
    let (lossy, lossy_guard): (NonBlocking, WorkerGuard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lossy_lines)
        .thread_name("rampart-log")
        .finish(lossy);
    let dropped = lossy.error_counter();
    // `with_max_level(WARN)` takes WARN and ERROR (the less verbose end); the rest falls through.
    let writer = lossless.with_max_level(Level::WARN).or_else(lossy);
    (writer, Logging { _lossless: lossless_guard, _lossy: lossy_guard, dropped })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Condvar, Mutex};

    use super::*;

    /// Appends to a shared buffer; while `gate` is closed, its writes wait (a stalled stdout).
    #[derive(Clone)]
    struct Sink {
        out: Arc<Mutex<Vec<u8>>>,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = &self.gate {
                let (open, cv) = &**gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_drops_and_counts_info_lines_but_never_warnings() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        // Both queues write to the same place; the lossy one is stalled until the gate opens.
        let lossless = Sink { out: Arc::clone(&out), gate: None };
        let lossy = Sink { out: Arc::clone(&out), gate: Some(Arc::clone(&gate)) };
        let (writer, logging) = writers(lossless, lossy, 4);
        let dropped = logging.dropped_lines();
        let subscriber = tracing_subscriber::fmt().with_max_level(Level::INFO).with_writer(writer).json().finish();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..200 {
                tracing::info!(i, "access line");
            }
            // The lossy queue is full now: warnings must still get through, all of them.
            for i in 0..50 {
                tracing::warn!(i, "operator warning");
                tracing::error!(i, "internal error");
            }
        });
        let lost = dropped();
        assert!(lost >= 150, "a queue of 4 behind a stalled writer kept {} of 200 lines", 200 - lost);
        {
            let (open, cv) = &*gate;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        drop(logging);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(count("operator warning"), 50, "{text}");
        assert_eq!(count("internal error"), 50, "{text}");
        // Every info line is either written or counted, never silently gone.
        assert_eq!(count("access line") as u64 + lost, 200, "{text}");
        assert!(count("access line") >= 1);
    }
}
