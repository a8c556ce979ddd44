//! Every error is problem+json, and no 5xx body says more than title, status and request id.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use crate::AppState;
use crate::error::{PROBLEM_JSON, ServerFault, problem as problem_response};
use crate::routes::route_policy::{Content, RoutePolicy};

/// The response as the client gets it: `res` as it is, or made problem+json (or a page), as the
/// module says. Needs the request id only to answer an error with it, so it is borrowed.
pub async fn finish(state: &AppState, policy: RoutePolicy, request_id: &str, res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        // Left as it is below too; said here so that the common case does no more.
        return res;
    }
    // On a page (any path under `/ui`, when the pages are on) an error is a page, never
    // problem+json.
    let page = state.settings.ui.enabled && policy.content == Content::Page;
    if page {
        // A page's own 4xx (a form shown again with its errors) is already what the visitor
        // should see; anything else becomes a problem first (a 5xx reduced to nothing), then a page.
        if status.is_client_error() && crate::ui::problem_page::is_html(&res) {
            return res;
        }
        return crate::ui::problem_page::as_page(state, as_problem(res, request_id), request_id).await;
    }
    as_problem(res, request_id)
}

fn as_problem(res: Response, request_id: &str) -> Response {
    let status = res.status();
    if status.is_server_error() {
        // Rebuilt from scratch whatever the inner layer wrote: a driver message or a path can
        // never leak through a 5xx. Headers that matter to the client (Retry-After) are kept.
        let retry_after = res.headers().get(header::RETRY_AFTER).cloned();
        let title = status.canonical_reason().unwrap_or("Server Error");
        let mut out = (status, Json(json!({ "title": title, "status": status.as_u16(), "request_id": request_id })))
            .into_response();
        out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(v) = retry_after {
            out.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Some(fault) = res.extensions().get::<ServerFault>().cloned() {
            out.extensions_mut().insert(fault);
        }
        return out;
    }
    if status.is_client_error() && !is_problem(&res) {
        let (parts, _) = res.into_parts();
        let (slug, detail) = describe(status);
        let mut out = problem_response(status, slug, detail.into(), None);
        for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(v) = parts.headers.get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        return out;
    }
    res
}

fn is_problem(res: &Response) -> bool {
    res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "this method is not allowed on this path"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "the body must be application/json"),
        _ => ("bad-request", "the request was refused"),
    }
}
