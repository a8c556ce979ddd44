//! [`WithRequestId`]: the id of the request being served on the lines written while serving it.
//!
//! The access line carries its `request_id` as a field of its own; a line written deeper down (a
//! handler's warning, an internal error, a panic) gets it here, from the task it is written on.
//! JSON lines get a `request_id` key, first; text lines a `request_id=` prefix.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Json, Writer, format};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::json_line;

/// How the wrapped formatter writes a line, and so where the id goes.
#[derive(Clone, Copy)]
enum Shape {
    /// One JSON object a line: the id is its first key.
    Json,
    /// Human-readable text: the id leads the line.
    Text,
}

/// A formatter of tracing-subscriber, with the request id added to the lines written while a
/// request is served. Built only by [`WithRequestId::json`] and [`WithRequestId::text`], so that
/// the JSON formatter is always the one [`json_line`] writes like.
pub struct WithRequestId<F> {
    inner: F,
    shape: Shape,
}

impl WithRequestId<Format<Json>> {
    /// JSON lines: the event's fields flattened, the current span (its fields and name) as
    /// `span`, no span list. A line of ours outside any span (the access line) is written by
    /// [`json_line`] instead, byte for byte the same.
    pub fn json() -> Self {
        let inner = format().json().flatten_event(true).with_current_span(true).with_span_list(false);
        Self { inner, shape: Shape::Json }
    }
}

impl WithRequestId<Format<Full>> {
    /// Human-readable lines, for a terminal.
    pub fn text() -> Self {
        Self { inner: format(), shape: Shape::Text }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        super::with_request_id(|id| {
            if matches!(self.shape, Shape::Json) {
                let in_span = event.parent().is_some() || ctx.lookup_current().is_some();
                if json_line::applies(event, in_span) {
                    return json_line::write(event, id, &mut writer);
                }
            }
            let Some(id) = id else {
                return self.inner.format_event(ctx, writer, event);
            };
            // Escaped like any other value, although a request id is short and plain by
            // construction: nothing from the request reaches a line unescaped.
            let id = serde_json::to_string(id).map_err(|_| fmt::Error)?;
            match self.shape {
                Shape::Json => {
                    writer.write_str("{\"request_id\":")?;
                    writer.write_str(&id)?;
                    writer.write_char(',')?;
                    // The JSON formatter opens the object; it is open already.
                    let mut rest = AfterOpeningBrace { out: writer, opened: false };
                    self.inner.format_event(ctx, Writer::new(&mut rest), event)
                }
                Shape::Text => {
                    write!(writer, "request_id={id} ")?;
                    self.inner.format_event(ctx, writer, event)
                }
            }
        })
    }
}

/// Passes a JSON object on without its opening brace. Anything else is refused (the line is lost
/// rather than written malformed), which cannot happen with the JSON formatter.
struct AfterOpeningBrace<'w> {
    out: Writer<'w>,
    opened: bool,
}

impl fmt::Write for AfterOpeningBrace<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.opened || s.is_empty() {
            return self.out.write_str(s);
        }
        let rest = s.strip_prefix('{').ok_or(fmt::Error)?;
        self.opened = true;
        self.out.write_str(rest)
    }
}

#[cfg(test)]
mod tests {

    use serde_json::Value;

    use super::*;
    use crate::extract::RequestId;
    use crate::log_context::test_lines::Lines;

    fn id(text: &'static str) -> RequestId {
        let mut headers = http::HeaderMap::new();
        headers.insert(crate::extract::REQUEST_ID, http::HeaderValue::from_static(text));
        RequestId::of(&headers)
    }

    impl Lines {
        fn json(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
        }
    }

    /// Logs as `telemetry::init` sets it up for JSON, the way the server logs: one line outside a
    /// request, one inside, one inside a handler's own span.
    #[tokio::test]
    async fn json_lines_inside_a_request_carry_its_id_and_only_those() {
        let lines = Lines::default();
        let subscriber =
            tracing_subscriber::fmt().json().with_writer(lines.clone()).event_format(WithRequestId::json()).finish();
        let _default = tracing::subscriber::set_default(subscriber);

        tracing::info!("outside");
        super::super::scope(id("req-1.a_b"), async {
            tracing::warn!(cause = "x\"y", "inside");
            let handler = tracing::info_span!("handler");
            let _entered = handler.enter();
            tracing::error!("in a handler span");
        })
        .await;

        let lines = lines.json();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].get("request_id").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["request_id"], "req-1.a_b");
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["cause"], "x\"y");
        assert_eq!(lines[1]["level"], "WARN");
        // The handler's span hides no id, and is still shown.
        assert_eq!(lines[2]["request_id"], "req-1.a_b");
        assert_eq!(lines[2]["span"]["name"], "handler");
    }

    #[tokio::test]
    async fn text_lines_inside_a_request_lead_with_its_id() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(lines.clone())
            .event_format(WithRequestId::text())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        super::super::scope(id("req-2"), async { tracing::info!("inside") }).await;
        tracing::info!("outside");
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let all: Vec<&str> = text.lines().collect();
        assert_eq!(all.len(), 2, "{text}");
        assert!(all[0].starts_with("request_id=\"req-2\" ") && all[0].ends_with("inside"), "{text}");
        assert!(!all[1].contains("request_id"), "{text}");
    }

    #[test]
    fn anything_but_a_json_object_is_refused() {
        let mut out = String::new();
        let mut rest = AfterOpeningBrace { out: Writer::new(&mut out), opened: false };
        assert!(fmt::Write::write_str(&mut rest, "[1]").is_err());
        let mut rest = AfterOpeningBrace { out: Writer::new(&mut out), opened: false };
        fmt::Write::write_str(&mut rest, "").unwrap();
        fmt::Write::write_str(&mut rest, "{\"a\":").unwrap();
        fmt::Write::write_str(&mut rest, "{}}").unwrap();
        assert_eq!(out, "\"a\":{}}");
    }
}
