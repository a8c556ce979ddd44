//! `server.http_redirect_listen`: a plain-HTTP listener whose only answer is a redirect to the
//! same path on the https public URL. Nothing else is served there: no route, no cookie, no API.
//!
//! The target is built from the configured public origin, never from the request's `Host`
//! header (an attacker-chosen Host would otherwise make this an open redirect); only the path and
//! query are carried over, and they stay on our own origin whatever they hold.

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use rampart_core::config::WebOrigin;

/// The redirect-only application for `origin` (the https public origin).
pub fn app(origin: &WebOrigin) -> Router {
    let origin = origin.as_str().to_owned();
    Router::new().fallback(move |req: Request| {
        let origin = origin.clone();
        async move { redirect(&origin, &req) }
    })
}

fn redirect(origin: &str, req: &Request) -> Response {
    // Origin-form targets only ("/path?query"); an absolute-form target ("http://evil/x") is
    // reduced to its path too, so the answer always points at our origin.
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let path = if path.starts_with('/') { path } else { "/" };
    // A request target is visible ASCII (hyper refuses anything else), so this fails only on
    // the impossible; even then it says so rather than redirecting somewhere else.
    match HeaderValue::from_str(&format!("{origin}{path}")) {
        // 308 keeps the method and body: a POST sent to http:// by mistake is not turned into a GET.
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
