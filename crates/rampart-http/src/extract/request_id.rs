//! The request id: the client's `X-Request-Id` when it is short and plain, else a fresh one.
//!
//! A request id is not a secret and proves nothing: a client may send any well-formed one and
//! have it echoed, logged and written to the audit log. So a fresh one needs to be unique, not
//! unpredictable, and comes from a fast per-thread generator (wyrand, seeded once per thread from
//! the OS) instead of OS randomness per request, which was a system call on every request
//! (issue 17). It keeps the UUIDv4 layout, so that tools that parse ids as UUIDs still do.
//!
//! Kept as the header value itself: an echoed id shares the request's buffer, and cloning the
//! id (every extractor of [`super::RequestContext`] does) copies nothing.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;

use http::{HeaderMap, HeaderName, HeaderValue};

/// A name, not a string: a string is parsed into a header name on every use.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The request's own id if it is well formed, else a fresh one.
    pub fn of(headers: &HeaderMap) -> Self {
        headers.get(REQUEST_ID).filter(|v| well_formed(v)).map_or_else(Self::fresh, |v| Self(v.clone()))
    }

    /// A new id, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    pub fn fresh() -> Self {
        let bytes = u128::from(next()) << 64 | u128::from(next());
        let id = uuid::Builder::from_random_bytes(bytes.to_le_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Self(HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).unwrap_or(HeaderValue::from_static("-")))
    }

    /// The id as a response header value.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    /// The id as a response header value, without a clone.
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }
}

/// An incoming request id is echoed only if it is short and plain, so that a client cannot inject
/// log lines or header junk through it.
fn well_formed(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=64).contains(&b.len()) && b.iter().all(|&c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
}

impl Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        // Only well-formed (ASCII) values are ever held, so this never falls back.
        self.0.to_str().unwrap_or("-")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl Default for RequestId {
    /// Empty: only for a request that somehow lacks its context; every answered request has a
    /// real one.
    fn default() -> Self {
        Self(HeaderValue::from_static(""))
    }
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A thread's starting point, from the OS once per thread.
fn seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// wyrand: a 64-bit Weyl sequence through a multiply-fold mix. Every thread walks its own
/// sequence from a random start, so ids repeat neither within a thread nor, short of a 2^-64
/// chance, across threads.
fn next() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t as u64) ^ ((t >> 64) as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_uuid_v4_shaped_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = RequestId::fresh();
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(id.len(), 36);
            assert!(seen.insert(id.to_string()), "repeated id {id}");
        }
        // Another thread starts elsewhere.
        let other = std::thread::spawn(|| RequestId::fresh().to_string()).join().unwrap();
        assert!(!seen.contains(&other));
    }

    #[test]
    fn only_short_plain_ids_are_taken() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("my-trace.42_x"));
        assert_eq!(&*RequestId::of(&h), "my-trace.42_x");
        for bad in ["a b", "a\"b", "", "{\"x\":1}"] {
            h.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            assert_ne!(&*RequestId::of(&h), bad);
        }
        h.insert(REQUEST_ID, HeaderValue::from_str(&"a".repeat(65)).unwrap());
        assert_eq!(RequestId::of(&h).len(), 36);
    }
}
