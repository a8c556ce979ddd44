//! Sealed list cursors: a position in a list that only this deployment can have written.
//!
//! A cursor is `base64url(payload) "." base64url(tag)`, the tag an HMAC-SHA256 over the list's
//! context (which list, which sort) and the payload. A client can pass a cursor back but cannot
//! write or edit one: a forged, tampered or truncated cursor, or one made for another list or sort
//! order, fails the tag check and is refused before its payload is even parsed. The payload is
//! still parsed strictly by its reader, as if it were untrusted (defence in depth).
//!
//! The key is derived from the data key (see [`crate::auth::data_key::DataKey::subkey`]), not
//! drawn at random per process: every instance behind a load balancer shares the data key, so a
//! cursor from one instance works on the next. Rotating the data key voids outstanding cursors,
//! which costs a client no more than starting its listing again.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

/// The label of the cursor key among the data key's subkeys.
pub const KEY_LABEL: &str = "rampart list cursors v1";

/// Longer input is refused before any decoding. A record cursor carries the last row's sort
/// value, which for a long string field can be long; no URL is longer than this anyway (the
/// `http` crate's limit), so no cursor we give out is refused.
pub const MAX_CURSOR_LEN: usize = 64 * 1024;

pub struct CursorSeal {
    key: hmac::Key,
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal([redacted])")
    }
}

impl CursorSeal {
    pub fn new(key: hmac::Key) -> Self {
        Self { key }
    }

    /// The cursor for `payload` in list `context`. A context never contains a NUL byte (it is
    /// built from fixed names and configuration identifiers), so `context 0 payload` is
    /// unambiguous.
    pub fn seal(&self, context: &str, payload: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &message(context, payload));
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The payload of a cursor this deployment sealed for `context`, or `None`. The tag is
    /// compared in constant time.
    pub fn open(&self, context: &str, cursor: &str) -> Option<Vec<u8>> {
        if cursor.len() > MAX_CURSOR_LEN {
            return None;
        }
        let (payload, tag) = cursor.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, &message(context, &payload), &tag).ok()?;
        Some(payload)
    }
}

fn message(context: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(context.len() + 1 + payload.len());
    m.extend_from_slice(context.as_bytes());
    m.push(0);
    m.extend_from_slice(payload);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> CursorSeal {
        CursorSeal::new(hmac::Key::new(hmac::HMAC_SHA256, b"test key"))
    }

    #[test]
    fn round_trip_bound_to_context_and_key() {
        let s = seal();
        let c = s.seal("admin/audit", b"42");
        assert_eq!(s.open("admin/audit", &c).as_deref(), Some(&b"42"[..]));
        assert!(s.open("admin/users", &c).is_none(), "another list's cursor");
        let other = CursorSeal::new(hmac::Key::new(hmac::HMAC_SHA256, b"other key"));
        assert!(other.open("admin/audit", &c).is_none(), "another deployment's cursor");
    }

    #[test]
    fn tampered_and_malformed_cursors_are_refused() {
        let s = seal();
        let c = s.seal("ctx", b"{\"v\":1}");
        let (payload, tag) = c.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(b"{\"v\":2}"));
        assert!(s.open("ctx", &forged).is_none());
        assert!(s.open("ctx", &format!("{payload}.")).is_none());
        assert!(s.open("ctx", payload).is_none());
        for bad in ["", ".", "a.b", "!!.!!", &"A".repeat(MAX_CURSOR_LEN + 1)] {
            assert!(s.open("ctx", bad).is_none(), "{bad:.10}");
        }
        // The separator keeps context `ab` with payload `c` apart from context `a` with `bc`.
        let c = s.seal("ab", b"c");
        let moved = format!("{}.{}", URL_SAFE_NO_PAD.encode(b"bc"), c.split_once('.').unwrap().1);
        assert!(s.open("a", &moved).is_none());
    }
}
