//! Every error under `/ui` is a page, never problem+json: the guard's 403, the rate limit's 429,
//! a 404, a 405, a 413, a 5xx. The `problem` layer hands each error response of a `/ui` path here
//! when the pages are enabled; the response keeps its status, `Allow`, `Retry-After` and
//! `RateLimit` headers and its `ServerFault` (so the cause is still logged once), and gets an
//! HTML body: for a 4xx the problem's `detail`, for a 5xx only the request id.

use axum::body::Body;
use axum::response::Response;
use http::header;

use crate::AppState;
use crate::error::{FieldError, ServerFault};

/// A problem+json body is ours and small; anything larger is not read.
const PROBLEM_MAX_BYTES: usize = 16 * 1024;

/// What a page shows of a problem document.
pub struct ProblemText {
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// The `detail` and `errors` of one of our problem documents (empty when it is not one).
pub async fn read_problem(body: Body) -> ProblemText {
    let value = axum::body::to_bytes(body, PROBLEM_MAX_BYTES)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let detail = value.get("detail").and_then(|d| d.as_str()).unwrap_or_default().to_owned();
    let errors = value
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    let field = e.get("field")?.as_str()?;
                    let message = e.get("message")?.as_str()?;
                    Some(FieldError::new(field, message))
                })
                .collect()
        })
        .unwrap_or_default();
    ProblemText { detail, errors }
}

/// `res` as a page, when it is an error that is not HTML yet.
pub async fn as_page(state: &AppState, res: Response, request_id: &str) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_html(&res) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let mut page = if status.is_server_error() {
        let detail = "Something went wrong on our side. Please try again in a moment.";
        super::layout::error_page(state, status, detail, Some(request_id))
    } else {
        let problem = read_problem(body).await;
        let detail = match problem.errors.as_slice() {
            [] if problem.detail.is_empty() => "The request was refused.".to_owned(),
            [] => sentence(&problem.detail),
            errors => errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "),
        };
        super::layout::error_page(state, status, &detail, None)
    };
    for name in [header::ALLOW, header::RETRY_AFTER, crate::error::RATELIMIT_POLICY, crate::error::RATELIMIT] {
        if let Some(v) = parts.headers.get(&name) {
            page.headers_mut().insert(name, v.clone());
        }
    }
    if let Some(fault) = parts.extensions.get::<ServerFault>().cloned() {
        page.extensions_mut().insert(fault);
    }
    page
}

pub fn is_html(res: &Response) -> bool {
    res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

/// The API's details are lower-case clauses; a page shows a sentence.
pub fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut s: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}
