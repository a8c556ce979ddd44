//! The JSON line of an event of ours written outside any span (the access line, every request),
//! byte for byte as tracing-subscriber's JSON formatter writes it, at a fraction of the cost.
//!
//! Why (issue 17): the stock formatter serializes through an `io::Write` adaptor over the line's
//! `String` that validates UTF-8 and goes through two dynamic `write_str` calls for every piece
//! serde writes (each key, each quote, each escaped run), and allocates the timestamp. That was
//! a quarter of the instructions of `GET /healthz`. Here the line is written into a plain byte
//! buffer, reused by the thread, and validated and copied once. Strings are copied as they are
//! when they hold nothing JSON escapes (a check over whole strings, which the compiler
//! vectorizes), and only the rare one that does goes through `serde_json`'s escaping: serde's
//! byte-by-byte escaping of every key and value was ~3 000 instructions a line (callgrind).
//!
//! Only for what it can write exactly like the stock formatter: an event of our own crates
//! (`rampart*` targets: never an event bridged from the `log` crate, whose metadata the stock
//! formatter rewrites) with no current span (so no `span` key). Anything else goes to the stock
//! formatter. `tests::lines_are_the_stock_formatters_lines` holds the two to the same bytes.

use std::cell::Cell;
use std::fmt;

use tracing::Event;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;

thread_local! {
    /// The line being built, kept between lines so that building one allocates nothing.
    static LINE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Whether [`write`] writes `event` exactly as the stock formatter would, given whether a span
/// is current.
pub fn applies(event: &Event<'_>, in_span: bool) -> bool {
    !in_span && event.metadata().target().starts_with("rampart")
}

/// Writes `event` as one JSON line, with `request_id` first when given.
pub fn write(event: &Event<'_>, request_id: Option<&str>, writer: &mut Writer<'_>) -> fmt::Result {
    // Taken, not borrowed: a field whose formatting logs (it should not) gets a fresh buffer
    // instead of a panic.
    let mut line = LINE.take();
    line.clear();
    let built = build(event, request_id, &mut line);
    let written = match built {
        Ok(()) => std::str::from_utf8(&line).map_err(|_| fmt::Error).and_then(|text| writer.write_str(text)),
        Err(_) => Err(fmt::Error),
    };
    LINE.set(line);
    written
}

/// The keys in the stock formatter's order: the request id (ours), `timestamp`, `level`, the
/// event's fields in their order (`message` among them), `target`.
fn build(event: &Event<'_>, request_id: Option<&str>, line: &mut Vec<u8>) -> serde_json::Result<()> {
    let meta = event.metadata();
    line.push(b'{');
    let mut object = Object { line, first: true, state: Ok(()) };
    if let Some(id) = request_id {
        object.key("request_id");
        object.string(id);
    }
    object.key("timestamp");
    let now = Timestamp::now();
    // Always ASCII digits and separators.
    object.string(std::str::from_utf8(&now).unwrap_or_default());
    object.key("level");
    object.string(meta.level().as_str());
    event.record(&mut object);
    object.key("target");
    object.string(meta.target());
    object.state?;
    line.extend_from_slice(b"}\n");
    Ok(())
}

/// A JSON object being written into a line, one key and value at a time, exactly as
/// `tracing_serde`'s map visitor over `serde_json` writes it.
struct Object<'a> {
    line: &'a mut Vec<u8>,
    first: bool,
    /// The first failure of a value's serialization (none is expected: numbers and strings).
    state: serde_json::Result<()>,
}

impl Object<'_> {
    fn key(&mut self, key: &str) {
        if !std::mem::take(&mut self.first) {
            self.line.push(b',');
        }
        self.string(key);
        self.line.push(b':');
    }

    /// `s` as a JSON string: copied when nothing in it needs escaping, else through serde_json.
    fn string(&mut self, s: &str) {
        if needs_escaping(s) {
            self.value(s);
        } else {
            self.line.push(b'"');
            self.line.extend_from_slice(s.as_bytes());
            self.line.push(b'"');
        }
    }

    /// `v` as serde_json writes it (numbers, booleans, and strings that need escaping).
    fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        if self.state.is_ok() {
            self.state = serde_json::to_writer(&mut *self.line, v);
        }
    }
}

impl Visit for Object<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        self.string(value);
    }

    /// `?value` and `%value` (and, by `Visit`'s defaults, errors, bytes and 128-bit integers):
    /// the formatted text as a JSON string, escaped piece by piece as it is formatted.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field.name());
        self.line.push(b'"');
        let mut contents = StringContents { line: self.line, state: Ok(()) };
        let formatted = fmt::write(&mut contents, format_args!("{value:?}"));
        if self.state.is_ok() {
            self.state = contents.state.and(formatted.map_err(serde::ser::Error::custom));
        }
        self.line.push(b'"');
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field.name());
        self.value(&value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        self.value(&value);
    }
}

/// The inside of a JSON string, written as `fmt` hands over its pieces.
struct StringContents<'a> {
    line: &'a mut Vec<u8>,
    state: serde_json::Result<()>,
}

impl fmt::Write for StringContents<'_> {
    fn write_str(&mut self, piece: &str) -> fmt::Result {
        if !needs_escaping(piece) {
            self.line.extend_from_slice(piece.as_bytes());
            return Ok(());
        }
        // Rare (a quote, a backslash or a control character): serde_json escapes the piece as a
        // whole string, and its quotes are dropped.
        let start = self.line.len();
        if let Err(e) = serde_json::to_writer(&mut *self.line, piece) {
            self.state = Err(e);
            return Err(fmt::Error);
        }
        self.line.remove(start);
        self.line.pop();
        Ok(())
    }
}

/// Whether JSON needs anything in `s` escaped: a control character, a quote or a backslash (all
/// that serde_json escapes). Every byte is looked at, with no early exit, so that the loop is
/// vectorized: most strings are short and need nothing.
fn needs_escaping(s: &str) -> bool {
    s.bytes().fold(false, |found, b| found | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// Now, as the stock formatter's default timer writes it: RFC 3339 in UTC to the microsecond,
/// `2026-12-06T14:45:07.123456Z`. Written digit by digit into a fixed buffer: through `fmt`'s
/// padded integers (`{:02}` seven times) it cost ~2 600 instructions a line, more than a twentieth
/// of a whole `GET /healthz` (callgrind, issue 17). The calendar is the `time` crate's.
struct Timestamp;

/// `0000-00-00T00:00:00.000000Z`: where each field's digits go, and how many there are.
const LAYOUT: [(usize, usize); 7] = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 6)];

impl Timestamp {
    fn now() -> [u8; 27] {
        let now = time::OffsetDateTime::now_utc();
        let (year, month, day) = now.to_calendar_date();
        let (hour, minute, second, micros) = now.to_hms_micro();
        // The stock timer writes a year past 9999 with more digits; this one never will be.
        let year = u32::try_from(year).unwrap_or(0).min(9999);
        let values = [year, u32::from(u8::from(month)), day.into(), hour.into(), minute.into(), second.into(), micros];
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        for ((start, len), mut value) in LAYOUT.into_iter().zip(values) {
            for digit in out.iter_mut().skip(start).take(len).rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;
    use crate::log_context::test_lines::Lines;

    /// This module's lines, for events it applies to.
    struct Fast;

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> FormatEvent<S, JsonFields> for Fast {
        fn format_event(
            &self,
            _: &FmtContext<'_, S, JsonFields>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            write(event, None, &mut writer)
        }
    }

    fn events() {
        let path = "/x%0A{\"level\":\"ERROR\"}\"injected\":1\u{7}é\\";
        tracing::info!(
            request_id = "abc-1",
            method = %http::Method::GET,
            path,
            status = 404u16,
            latency_ms = 0.123_456_7f64,
            client_ip = %std::net::IpAddr::from([127, 0, 0, 1]),
            "request"
        );
        tracing::warn!(cause = %"line\nbreak \"quoted\"", ok = true, n = -3i64, "service unavailable");
        tracing::error!(debugged = ?Some("x\ty"), "internal error");
        tracing::warn!(
            "key \"quoted\"\\" = 2u64,
            big = 1u128 << 100,
            nan = f64::NAN,
            flag = false,
            error = &std::fmt::Error as &dyn std::error::Error,
            "odd \u{1}values"
        );
        tracing::info!("no fields at all");
    }

    /// Both formatters on the same events: the same bytes but for the timestamps, which are
    /// checked for their shape.
    #[test]
    fn lines_are_the_stock_formatters_lines() {
        let stock = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(stock.clone())
            .event_format(tracing_subscriber::fmt::format().json().flatten_event(true).with_current_span(true))
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let fast = Lines::default();
        let subscriber = tracing_subscriber::fmt().json().with_writer(fast.clone()).event_format(Fast).finish();
        tracing::subscriber::with_default(subscriber, events);

        let text = |l: &Lines| String::from_utf8(l.0.lock().unwrap().clone()).unwrap();
        let (stock, fast) = (text(&stock), text(&fast));
        assert_eq!(stock.lines().count(), 5, "{stock}");
        assert_eq!(fast.lines().count(), 5, "{fast}");
        assert!(stock.ends_with('\n') && fast.ends_with('\n'));
        for (s, f) in stock.lines().zip(fast.lines()) {
            let (s_time, s_rest) = split_timestamp(s);
            let (f_time, f_rest) = split_timestamp(f);
            assert_eq!(s_rest, f_rest);
            assert_eq!(s_time.len(), f_time.len(), "{s_time} / {f_time}");
            assert!(f_time.ends_with('Z') && f_time.as_bytes()[10] == b'T', "{f_time}");
        }
        let first: serde_json::Value = serde_json::from_str(fast.lines().next().unwrap()).unwrap();
        assert_eq!(first["path"], "/x%0A{\"level\":\"ERROR\"}\"injected\":1\u{7}é\\");
    }

    /// The same text as the stock timer's, to the second (the microseconds move between the
    /// two readings), and the same shape after.
    #[test]
    fn the_timestamp_is_the_stock_timers() {
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        let stock = || {
            let mut text = String::new();
            SystemTime.format_time(&mut Writer::new(&mut text)).unwrap();
            text
        };
        for _ in 0..5 {
            let (before, ours, after) = (stock(), Timestamp::now(), stock());
            let ours = std::str::from_utf8(&ours).unwrap().to_owned();
            if before.get(..19) != after.get(..19) {
                continue; // a second ended between the readings
            }
            assert_eq!(ours.get(..19), before.get(..19), "{ours} / {before}");
            assert_eq!(ours.len(), before.len(), "{ours} / {before}");
            assert!(ours.get(19..20) == Some(".") && ours.ends_with('Z'), "{ours}");
            assert!(ours.get(20..26).unwrap().bytes().all(|b| b.is_ascii_digit()), "{ours}");
            return;
        }
        panic!("five seconds ended between two readings");
    }

    /// `{"timestamp":"<t>",<rest>` as (`<t>`, `<rest>`).
    fn split_timestamp(line: &str) -> (&str, &str) {
        let rest = line.strip_prefix("{\"timestamp\":\"").unwrap_or_else(|| panic!("{line}"));
        rest.split_once('"').unwrap()
    }

    #[test]
    fn the_request_id_comes_first_and_escaped() {
        let out = Arc::new(Mutex::new(String::new()));
        let captured = Arc::clone(&out);
        struct Capture(Arc<Mutex<String>>, &'static str);
        impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> FormatEvent<S, JsonFields> for Capture {
            fn format_event(&self, _: &FmtContext<'_, S, JsonFields>, _: Writer<'_>, event: &Event<'_>) -> fmt::Result {
                let mut line = String::new();
                write(event, Some(self.1), &mut Writer::new(&mut line))?;
                self.0.lock().unwrap().push_str(&line);
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(Lines::default())
            .event_format(Capture(captured, "a\"b"))
            .finish();
        tracing::subscriber::with_default(subscriber, || tracing::info!(x = 1u64, "m"));
        let line = out.lock().unwrap().clone();
        assert!(line.starts_with("{\"request_id\":\"a\\\"b\",\"timestamp\":"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["request_id"], "a\"b");
        assert_eq!(v["x"], 1);
    }

    #[test]
    fn events_of_other_crates_or_in_a_span_are_left_to_the_stock_formatter() {
        struct Probe(Arc<Mutex<Vec<bool>>>);
        impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> FormatEvent<S, JsonFields> for Probe {
            fn format_event(
                &self,
                ctx: &FmtContext<'_, S, JsonFields>,
                _: Writer<'_>,
                event: &Event<'_>,
            ) -> fmt::Result {
                self.0.lock().unwrap().push(applies(event, ctx.lookup_current().is_some()));
                Ok(())
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(Lines::default())
            .event_format(Probe(Arc::clone(&seen)))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("ours");
            tracing::info!(target: "sqlx::query", "theirs");
            let _span = tracing::info_span!("handler").entered();
            tracing::info!("ours, in a span");
        });
        assert_eq!(*seen.lock().unwrap(), [true, false, false]);
    }
}
