//! The id of the request being served, on the log lines written while serving it.
//!
//! Every line written on behalf of a request says which request. The access line and the fault
//! lines of the outermost layer carry `request_id` as a field of their own. Lines written deeper
//! down (a handler's warning, a flow's error, a panic) get it from here: the outermost layer runs
//! the rest of the request inside [`scope`], and [`WithRequestId`], the formatter the binary
//! logs through, adds the id to every line written inside it.
//!
//! A task-local value rather than a tracing span (issue 17): the span was built, entered and
//! left on every request, and its fields re-read into every line it was current for; and a
//! handler's own `#[instrument]` span hid it (the JSON formatter shows the innermost span only),
//! so a warning inside such a handler went out without the id.

mod formatter;
mod json_line;

use std::future::Future;

pub use formatter::WithRequestId;

use crate::extract::RequestId;

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// Runs `fut` with `id` as the request id of every line it logs.
pub(crate) fn scope<F: Future>(id: RequestId, fut: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, fut)
}

/// Calls `f` with the id of the request being served on this task, if any: a short plain id
/// ([`RequestId`] holds only well-formed ones).
fn with_request_id<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    // A clone is a reference count: the id shares its buffer.
    let id = REQUEST_ID.try_with(RequestId::clone).ok();
    f(id.as_deref())
}

/// A log writer that keeps what it is given, for the formatters' tests.
#[cfg(test)]
pub(crate) mod test_lines {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    pub(crate) struct Lines(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
}
