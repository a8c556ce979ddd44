//! Structured logs: JSON lines on stdout by default. Request data reaches them only through typed
//! fields (escaped by the JSON formatter), never as raw text, and no handler logs a body, a
//! cookie or a header.
//!
//! Lines are written off the request path (issue 17: a synchronous write to stdout per request
//! cost `/healthz` about a third of its throughput). A thread that logs only formats its line and
//! queues it; a writer thread makes the system calls, in batches. The writer is our own
//! ([`writer`]): it drains its queue on a short timer instead of sleeping on it, so queuing a
//! line never has to wake it (tracing-appender's did, nearly once a line). There are two queues,
//! each with its writer thread, because not every line may be lost:
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
//! queued. Two threads rather than one: a stalled write of the access log must not hold back the
//! warnings.

mod writer;

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rampart_core::config::{LogConfig, LogFormat};
use rampart_http::log_context::WithRequestId;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use writer::{WhenFull, WriterGuard};

/// The WebAuthn verifier's own events are off: they can describe what a client sent (a CBOR parse
/// error of an attestation object, say). A refused ceremony is logged by us, with webauthn-rs's
/// reason (a fixed message) and nothing of the client's data.
const QUIET: &str = "webauthn_rs_core=off,webauthn_rs=off";

/// Lines the lossy queue holds: about a third of a second of access log at 50 000 requests a
/// second. The queue's slots are allocated up front (32 bytes each: a stamp and a `Vec`), and a
/// queued line holds its text, so the bound is also a memory bound.
const LOSSY_LINES: usize = 16_384;
/// Lines the lossless queue holds before a thread that logs a warning waits for the writer.
const LOSSLESS_LINES: usize = 4_096;
/// Lines are gathered into writes of up to this many bytes.
const WRITE_BUFFER: usize = 64 * 1024;

/// The logging writer threads, running while this lives. Dropping it writes out the queued lines
/// (waiting up to about a second for each writer).
pub struct Logging {
    _lossless: WriterGuard,
    _lossy: WriterGuard,
    dropped: Arc<AtomicU64>,
}

impl Logging {
    /// A reader of the number of `info`-and-below lines dropped so far because their queue was
    /// full, for `/metrics`.
    pub fn dropped_lines(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let dropped = self.dropped.clone();
        move || dropped.load(Ordering::Relaxed)
    }
}

pub fn init(log: &LogConfig) -> Result<Logging, String> {
    let filter =
        EnvFilter::try_new(format!("{QUIET},{}", log.level)).map_err(|e| format!("config key `log.level`: {e}"))?;
    let stdout = || BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout());
    let (writer, logging) = writers(stdout(), stdout(), Capacity { lossless: LOSSLESS_LINES, lossy: LOSSY_LINES })
        .map_err(|e| format!("cannot start the log writer threads: {e}"))?;
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
    capacity: Capacity,
) -> std::io::Result<(impl for<'a> MakeWriter<'a> + Send + Sync + 'static, Logging)> {
    let (lossless, lossless_guard) = writer::spawn(lossless, capacity.lossless, WhenFull::Wait, "rampart-log-warn")?;
    let (lossy, lossy_guard) = writer::spawn(lossy, capacity.lossy, WhenFull::Drop, "rampart-log")?;
    let dropped = lossy.dropped();
    // `with_max_level(WARN)` takes WARN and ERROR (the less verbose end); the rest falls through.
    let writer = lossless.with_max_level(Level::WARN).or_else(lossy);
    Ok((writer, Logging { _lossless: lossless_guard, _lossy: lossy_guard, dropped }))
}

/// Lines each queue holds (small ones in the tests, to fill them).
#[derive(Clone, Copy)]
struct Capacity {
    lossless: usize,
    lossy: usize,
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

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
        let (writer, logging) = writers(lossless, lossy, Capacity { lossless: LOSSLESS_LINES, lossy: 4 }).unwrap();
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

    /// Opens a gate closed by the test.
    fn open(gate: &(Mutex<bool>, Condvar)) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    /// The `fields` of each JSON line of `out`; panics on a line that is not whole JSON.
    fn fields(out: &Mutex<Vec<u8>>) -> Vec<serde_json::Value> {
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                line.get("fields").cloned().unwrap()
            })
            .collect()
    }

    #[test]
    fn a_full_lossless_queue_makes_the_thread_wait_and_loses_no_warning() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let lossless = Sink { out: Arc::clone(&out), gate: Some(Arc::clone(&gate)) };
        let lossy = Sink { out: Arc::clone(&out), gate: None };
        let (writer, logging) = writers(lossless, lossy, Capacity { lossless: 2, lossy: LOSSY_LINES }).unwrap();
        let dropped = logging.dropped_lines();
        let logger = std::thread::spawn(move || {
            let subscriber = tracing_subscriber::fmt().with_writer(writer).json().finish();
            tracing::subscriber::with_default(subscriber, || {
                for i in 0..40 {
                    tracing::warn!(i, "operator warning");
                }
            });
        });
        // The output is stalled and the queue holds 2 lines: the logging thread cannot be done.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!logger.is_finished(), "40 warnings fitted in a queue of 2 behind a stalled output");
        assert!(out.lock().unwrap().is_empty());
        open(&gate);
        logger.join().unwrap();
        drop(logging);
        let order: Vec<u64> = fields(&out).iter().filter_map(|f| f.get("i").and_then(|i| i.as_u64())).collect();
        assert_eq!(order, (0..40).collect::<Vec<u64>>(), "every warning, once, in order");
        assert_eq!(dropped(), 0);
    }

    #[test]
    fn dropping_the_guard_writes_out_every_queued_line_whole_and_in_order() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = || Sink { out: Arc::clone(&out), gate: None };
        let (writer, logging) = writers(sink(), sink(), Capacity { lossless: 1_024, lossy: 16_384 }).unwrap();
        let dropped = logging.dropped_lines();
        let subscriber = Arc::new(tracing_subscriber::fmt().with_writer(writer).json().finish());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let subscriber = Arc::clone(&subscriber);
                std::thread::spawn(move || {
                    tracing::subscriber::with_default(subscriber, || {
                        for i in 0..2_000 {
                            tracing::info!(t, i, padding = "x".repeat(i % 300), "access line");
                            if i % 20 == 0 {
                                tracing::warn!(t, i, "operator warning");
                            }
                        }
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Idle long enough for the writers to back off to their longest pause, then lines that
        // only shutdown can write out: the guard is dropped while they sit in the queue.
        std::thread::sleep(std::time::Duration::from_millis(300));
        tracing::subscriber::with_default(Arc::clone(&subscriber), || {
            for i in 0..100 {
                tracing::info!(t = 4, i, "last access line");
                tracing::warn!(t = 4, i, "last warning");
            }
        });
        drop(logging);
        assert_eq!(dropped(), 0, "the lossy queue holds all 8 000 lines");
        let lines = fields(&out);
        for t in 0..4 {
            for message in ["access line", "operator warning"] {
                let order: Vec<u64> = lines
                    .iter()
                    .filter(|f| f.get("t").and_then(|v| v.as_u64()) == Some(t))
                    .filter(|f| f.get("message").and_then(|v| v.as_str()) == Some(message))
                    .filter_map(|f| f.get("i").and_then(|i| i.as_u64()))
                    .collect();
                let expected: Vec<u64> =
                    if message == "access line" { (0..2_000).collect() } else { (0..2_000).step_by(20).collect() };
                assert_eq!(order, expected, "thread {t}, {message}: every line, once, in the thread's order");
            }
        }
        for message in ["last access line", "last warning"] {
            let order: Vec<u64> = lines
                .iter()
                .filter(|f| f.get("message").and_then(|v| v.as_str()) == Some(message))
                .filter_map(|f| f.get("i").and_then(|i| i.as_u64()))
                .collect();
            assert_eq!(order, (0..100).collect::<Vec<u64>>(), "{message}: queued at shutdown, written by it");
        }
        assert_eq!(lines.len(), 4 * (2_000 + 100) + 200);
    }
}
