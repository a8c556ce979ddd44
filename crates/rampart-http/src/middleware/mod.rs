//! The middleware stack, in one place. Outermost first:
//!
//! 1. `context`: request id (echoed when well-formed, else generated), client IP (through
//!    trusted proxies only), the log context carrying the id (`log_context`), and the access log
//!    line. Outermost so that every later layer and every response, error or not, has them.
//! 2. `security_headers`: on every response, including the ones produced by the layers below
//!    (413, 408, 404, 500), which is why it sits above them rather than next to the router.
//!    `Cache-Control` and the CSP as the route's policy says.
//! 3. `problem`: turns any error response that is not problem+json yet (axum's 405, the timeout's
//!    408, a panic's 500) into one, and reduces every 5xx body to title, status and request id.
//!    On a page route (pages on), an error becomes a page instead.
//! 4. `CatchPanicLayer`: a panic becomes a 500 instead of a dropped connection; its message is
//!    never logged or sent (it could hold data).
//! 5. `TimeoutLayer`: the whole request, handler included, has `limits.request_timeout`. (The
//!    time to send the request head is bounded earlier, in the accept loop.)
//! 6. `CorsLayer`: exact allowed origins only; answers preflights. Above the rate limit so that a
//!    browser page can read a 429 and its `Retry-After`.
//! 7. `rate_limit`: the per-IP API budget, or the login routes' per-IP budget, or none (the
//!    probes), as the route's policy says: 429 before any handler or database work, before the
//!    body is read (the other login budgets are spent in the credential check and the per-user
//!    budget in `Authenticated`: both need something this layer does not have; see
//!    `rate_limit.rs`). Above the guard, so that requests it refuses spend budget too.
//! 8. `guard`: refuses a cookie and a bearer token together (400), a declared body over the
//!    limit (413), on unsafe methods a foreign `Origin`, `Sec-Fetch-Site: cross-site` or a
//!    missing/wrong CSRF token on a cookie session where the route asks for one (403), and an API
//!    key on a route that refuses keys (403), all before any handler or database work.
//!
//! 1 to 3 run as one layer ([`outer`]), and 7 and 8 as another ([`admission`]), each step in
//! the order above: every `from_fn` layer boxes the request's future and its service and clones
//! its state on every request (issue 17), and neither pair has anything between its steps.
//!
//! Steps 2, 3, 7 and 8 differ by route: each reads the [`RoutePolicy`] declared where the route
//! is routed (`routes::route_policy`), by the template axum matched, or for an unmatched path the
//! policy of its area, looked up once per layer. Applied with `Router::layer`, the layers run
//! after routing, so the matched template is known; the order above is unchanged by it.
//!
//! In front of all of it, before routing, the login routes' per-IP budget refuses a client over
//! it without the rest ([`front`]).
//!
//! [`RoutePolicy`]: crate::routes::route_policy::RoutePolicy

mod context;
mod front;
mod guard;
mod problem;
mod rate_limit;
mod security_headers;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::routes::RouteTable;
use crate::{AppState, log_context};

pub use front::App;
pub use guard::{CSRF_HEADER, csrf_matches};
pub use rate_limit::LoginIpSpent;

/// What the layers that follow route policy are given: the state, and the routes' policies.
type Policed = (AppState, RouteTable);

pub fn stack(router: Router, policies: RouteTable, state: &AppState) -> App {
    let policed: Policed = (state.clone(), policies.clone());
    let origins: Vec<HeaderValue> =
        state.settings.cors.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o.as_str()).ok()).collect();
    // No allowed origins: no CORS layer at all, so no CORS header is ever sent.
    let cors = (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static(CSRF_HEADER)])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                crate::error::RATELIMIT_POLICY,
                crate::error::RATELIMIT,
            ])
    });
    let stacked = router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(policed.clone(), outer))
            .layer(CatchPanicLayer::custom(|_panic| {
                // The payload is deliberately not logged: it could quote request data.
                tracing::error!("handler panicked");
                StatusCode::INTERNAL_SERVER_ERROR.into_response_plain()
            }))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.settings.limits.request_timeout))
            .option_layer(cors)
            .layer(axum::middleware::from_fn_with_state(policed, admission)),
    );
    App::new(stacked, &policies, state)
}

/// Steps 1 to 3: context, then security headers on whatever the rest answers, problem+json (or
/// a page) made of it first.
async fn outer(State((state, routes)): State<Policed>, mut req: Request, next: Next) -> Response {
    let policy = routes.of(&req);
    let context = context::Context::begin(&state, &mut req);
    let answer = async {
        let res = next.run(req).await;
        problem::finish(&state, policy, context.request_id(), res).await
    };
    // Every line logged below this layer, handlers included, carries the request id.
    let mut res = log_context::scope(context.request_id().clone(), answer).await;
    security_headers::apply(&state, policy, &mut res);
    context.finish(res)
}

/// Steps 7 and 8: the per-IP budget is spent, then the guard's refusals, before the handler.
async fn admission(State((state, routes)): State<Policed>, mut req: Request, next: Next) -> Response {
    let policy = routes.of(&req);
    let refused = match rate_limit::spend(&state, policy.budget, &mut req).await {
        Err(refused) => Some(refused),
        Ok(()) => guard::admit(&state, policy, &mut req).err(),
    };
    match refused {
        Some(refused) => {
            drain_body(req, state.settings.limits.max_body_bytes).await;
            refused.into_response()
        }
        None => next.run(req).await,
    }
}

/// Reads the rest of a refused request's body (at most `limit` bytes, and nothing when its
/// declared length is over it) before the refusal is answered. Why: the refusal is made before
/// anything reads the body, and hyper closes a connection whose request body was not read to
/// the end when it is not already in its buffer. A client that writes the body after the head
/// (Python's http.client does) then had its connection closed under it, often with a reset that
/// also lost the refusal itself. A body the request budget allows is read by the handler anyway,
/// so this costs a refused request no more than an admitted one; the request timeout above
/// bounds a body that never comes. Over the limit (the guard's 413), the connection is closed
/// as before: reading it is what the limit is there to avoid. Test
/// `limits::a_refused_login_whose_body_comes_late_keeps_its_connection`.
async fn drain_body(req: Request, limit: usize) {
    if crate::extract::declares_more_than(req.headers(), limit) {
        return;
    }
    // Read and dropped frame by frame: nothing is kept, so nothing is copied.
    let mut body = req.into_body();
    let mut left = limit;
    while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await {
        let Some(rest) = left.checked_sub(frame.data_ref().map_or(0, bytes::Buf::remaining)) else { return };
        left = rest;
    }
}

trait PlainResponse {
    fn into_response_plain(self) -> http::Response<axum::body::Body>;
}

impl PlainResponse for StatusCode {
    fn into_response_plain(self) -> http::Response<axum::body::Body> {
        let mut res = http::Response::new(axum::body::Body::empty());
        *res.status_mut() = self;
        res
    }
}
