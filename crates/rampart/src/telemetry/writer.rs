//! A queue of log lines and the thread that writes them out, built so that a thread that logs
//! never has to wake the writer (issue 17).
//!
//! tracing-appender's worker slept in `recv()` on an empty channel, so under load nearly every
//! access line found it asleep: a futex wake-up on the request thread and a context switch per
//! line (perf on `/healthz` at ~68k req/s: the log thread ~18 % of the server's CPU, the kernel's
//! wake-up paths ~25 %). Here the writer never sleeps on the queue: it drains it on a timer,
//! every [`BUSY_PAUSE`] while lines come, backing off to [`IDLE_PAUSE`] when none do. Sending
//! a line is a `try_send` into a bounded crossbeam channel nobody waits on: a few atomic
//! operations, no system call. The only wake-ups left are the timer's (at most a thousand a
//! second, whatever the request rate) and the rare one when a queue is full.
//!
//! A line is queued whole (one `write` call of the formatter is one line) and written whole, in
//! the order it was queued, so lines of one thread keep their order and no line is split or
//! interleaved with another.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tracing_subscriber::fmt::MakeWriter;

/// The writer's pause after a batch while lines keep coming. At 70 000 lines a second that is
/// ~70 lines a batch, far below any queue's bound, for a thousand timer wake-ups a second.
const BUSY_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause, reached by doubling while the queue stays empty: an idle server's writer
/// wakes ~15 times a second. A burst that starts during it fills at most a few thousand slots
/// before the writer looks again, and a full queue wakes it at once anyway.
const IDLE_PAUSE: Duration = Duration::from_millis(64);
/// How long dropping the guard waits for the writer to write out what is queued. Bounded so that
/// a stalled stdout cannot hang shutdown (tracing-appender waited about as long).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// What a thread that logs does when the queue is full.
#[derive(Clone, Copy, Debug)]
pub(super) enum WhenFull {
    /// Wait for room, as a direct write to a stalled stdout would: nothing is lost.
    Wait,
    /// Drop the line and count it: the request does not wait on the log.
    Drop,
}

/// The sending end: a `MakeWriter` whose writer queues each line it is given.
pub(super) struct LineQueue {
    lines: Sender<Vec<u8>>,
    when_full: WhenFull,
    dropped: Arc<AtomicU64>,
    writer: Thread,
}

/// The writer thread, running while this lives. Dropping it writes out what is queued (waiting
/// up to [`SHUTDOWN_WAIT`]).
pub(super) struct WriterGuard {
    stop: Arc<AtomicBool>,
    writer: Thread,
    /// Disconnected when the writer thread has written out the queue and returned.
    finished: Receiver<()>,
}

/// Starts a writer thread named `name` that writes the lines of a queue of `capacity` lines to
/// `out`, flushing after each batch.
pub(super) fn spawn<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
    when_full: WhenFull,
    name: &str,
) -> io::Result<(LineQueue, WriterGuard)> {
    let (lines, queued) = bounded(capacity);
    let stop = Arc::new(AtomicBool::new(false));
    let (finished_tx, finished) = bounded::<()>(0);
    let writer = {
        let stop = Arc::clone(&stop);
        thread::Builder::new().name(name.to_owned()).spawn(move || {
            write_until_stopped(out, &queued, &stop, capacity);
            drop(finished_tx);
        })?
    };
    let writer = writer.thread().clone();
    let queue = LineQueue { lines, when_full, dropped: Arc::new(AtomicU64::new(0)), writer: writer.clone() };
    Ok((queue, WriterGuard { stop, writer, finished }))
}

impl LineQueue {
    /// The count of lines dropped so far because the queue was full (always 0 for `Wait`).
    pub(super) fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    fn push(&self, line: &[u8]) {
        match self.lines.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(line)) => {
                // The writer is behind (or its output stalled): have it look now rather than at
                // the end of its pause. Cheap when it is not parked (an atomic swap).
                self.writer.unpark();
                match self.when_full {
                    WhenFull::Drop => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    // Fails only once the writer thread is gone (after shutdown): nowhere to write.
                    WhenFull::Wait => {
                        let _ = self.lines.send(line);
                    }
                }
            }
            // The writer thread is gone (after shutdown): nowhere to write.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The writer handed to the formatter for one line: it borrows the queue (no clone per line).
pub(super) struct QueueWriter<'a>(&'a LineQueue);

impl Write for QueueWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        // The whole buffer, always: one formatter write is one line, and it stays one message.
        self.0.push(line);
        Ok(line.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = QueueWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        QueueWriter(self)
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.writer.unpark();
        // Ok never comes (nothing is sent): this returns when the thread is done, or at the timeout.
        let _ = self.finished.recv_timeout(SHUTDOWN_WAIT);
    }
}

fn write_until_stopped<W: Write>(mut out: W, queued: &Receiver<Vec<u8>>, stop: &AtomicBool, batch: usize) {
    let mut pause = BUSY_PAUSE;
    loop {
        // Read before draining: every line queued before the guard was dropped is in the queue
        // now, and the passes below take it.
        if stop.load(Ordering::Acquire) {
            while write_batch(&mut out, queued, batch) > 0 {}
            return;
        }
        let written = write_batch(&mut out, queued, batch);
        if written == batch {
            // A whole queue's worth: more is waiting, no pause.
            continue;
        }
        pause = if written > 0 { BUSY_PAUSE } else { (pause * 2).min(IDLE_PAUSE) };
        // Not `recv()`: a writer asleep on the queue is what every sender had to wake.
        thread::park_timeout(pause);
    }
}

/// Writes up to `max` queued lines and flushes them; returns how many it took off the queue.
fn write_batch<W: Write>(out: &mut W, queued: &Receiver<Vec<u8>>, max: usize) -> usize {
    let mut written = 0;
    while written < max {
        let Ok(line) = queued.try_recv() else { break };
        // A failed write (stdout closed) has nowhere to be reported; the line is lost, and the
        // writer keeps draining so that no thread waiting for room waits forever.
        let _ = out.write_all(&line);
        written += 1;
    }
    if written > 0 {
        let _ = out.flush();
    }
    written
}
