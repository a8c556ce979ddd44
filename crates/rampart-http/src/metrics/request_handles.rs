//! The request counter and latency histogram of each method, route template and status,
//! registered with the recorder once and then reused. Resolving them by label on every request
//! (an owned route, a status string, the labels built and hashed in the recorder's registry) was
//! a measurable share of a cheap request (issue 17); a hit here is a read lock and two lookups
//! that allocate nothing.
//!
//! The table is bounded as the labels are: routes are the router's templates plus `unmatched`,
//! methods a fixed few (anything else is `other`), statuses the codes hyper can send.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use http::{Method, StatusCode};
use metrics::{Counter, Histogram};

use super::{DURATION, REQUESTS};

struct Handles {
    requests: Counter,
    duration: Histogram,
}

impl Handles {
    fn record(&self, elapsed: Duration) {
        self.requests.increment(1);
        self.duration.record(elapsed.as_secs_f64());
    }
}

/// By method and status, then by route (so that a lookup borrows the route).
type Table = HashMap<(&'static str, u16), HashMap<Box<str>, Handles>>;

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(RwLock::default);

pub(super) fn record(method: &Method, route: &str, status: StatusCode, elapsed: Duration) {
    let key = (method_label(method), status.as_u16());
    // A poisoned lock (impossible: nothing below panics) would only cost the cache, not a count.
    if let Ok(table) = TABLE.read()
        && let Some(handles) = table.get(&key).and_then(|by_route| by_route.get(route))
    {
        handles.record(elapsed);
        return;
    }
    let handles = Handles {
        requests: metrics::counter!(REQUESTS, "method" => key.0, "route" => route.to_owned(), "status" => status.as_str().to_owned()),
        duration: metrics::histogram!(DURATION, "method" => key.0, "route" => route.to_owned()),
    };
    handles.record(elapsed);
    if let Ok(mut table) = TABLE.write() {
        table.entry(key).or_default().entry(route.into()).or_insert(handles);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
