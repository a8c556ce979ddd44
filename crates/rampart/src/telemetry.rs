//! Structured logs: JSON lines on stdout by default. Request data reaches them only through typed
//! fields (escaped by the JSON formatter), never as raw text, and no handler logs a body, a
//! cookie or a header.

use rampart_core::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// The WebAuthn verifier's own events are off: they can describe what a client sent (a CBOR parse
/// error of an attestation object, say). A refused ceremony is logged by us, with webauthn-rs's
/// reason (a fixed message) and nothing of the client's data.
const QUIET: &str = "webauthn_rs_core=off,webauthn_rs=off";

pub fn init(log: &LogConfig) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(format!("{QUIET},{}", log.level)).map_err(|e| format!("config key `log.level`: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    let result = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    result.map_err(|e| format!("cannot start logging: {e}"))
}
