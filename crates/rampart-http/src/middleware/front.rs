//! What runs before routing: the per-IP login budget of the login routes, refused in front of
//! the router.
//!
//! Why: a client over its login budget is exactly the one that sends the most requests (a
//! password-guessing script), so its refusal is the request that must cost least (issue 17).
//! Through the router it cost what any request costs: the route lookup, then the whole stack of
//! `middleware::stack` (two `from_fn` layers each boxing the request's future, the panic
//! catcher's clone, the timeout's timer, the task-local log context) before the budget said no.
//! Here the refusal takes none of them and is still the same answer: the same 429 (the route is
//! JSON, so the `problem` layer leaves it as it is), the same security headers for the route's
//! policy, the same request id, access line and metrics (`context`), and the same read of the
//! refused body (`drain_body`).
//!
//! Only a request for one of the routes that spend the per-IP login budget and match one exact
//! path ([`RouteTable::exact_login_routes`]) is looked at, and only its per-IP login budget: an
//! admitted request goes on through the router with [`LoginIpSpent`] set, so the stack's
//! `rate_limit` does not spend it twice, and everything else (the guard, the handler) runs as
//! for any request. Any other request goes straight to the router.
//!
//! Nothing here runs inside the request's log context: the only lines the budget's check can
//! write are about Redis coming and going (`redis_link`), which belong to no request.
//!
//! With CORS origins configured this is off: the 429 must then carry the CORS headers, which the
//! stack's `CorsLayer` adds, so the refusal is left to the stack.
//!
//! [`LoginIpSpent`]: super::LoginIpSpent

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use rampart_core::config::LimitsConfig;
use tower::{Service, ServiceExt};

use super::{context, drain_body, rate_limit, security_headers};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::RouteTable;
use crate::routes::route_policy::RoutePolicy;

/// The whole application as the accept loop serves it: the router inside its middleware stack,
/// with the login routes' per-IP budget in front (see the module doc).
#[derive(Clone)]
pub struct App {
    router: Router,
    gate: Option<Arc<Gate>>,
}

/// The login routes this looks at, and what it needs to answer them.
struct Gate {
    state: AppState,
    /// Exact paths, each with its route's policy: a handful, so a scan beats a hash.
    routes: Vec<(Arc<str>, RoutePolicy)>,
}

impl App {
    pub fn new(router: Router, policies: &RouteTable, state: &AppState) -> Self {
        let routes = policies.exact_login_routes();
        let gated = state.settings.cors.allowed_origins.is_empty() && !routes.is_empty();
        let gate = gated.then(|| Arc::new(Gate { state: state.clone(), routes }));
        Self { router, gate }
    }
}

type Gated = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Gated, <Router as Service<Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let taken = self.gate.as_ref().and_then(|gate| {
            let path = req.uri().path();
            let (template, policy) = gate.routes.iter().find(|(template, _)| **template == *path)?;
            Some((gate.clone(), template.clone(), *policy))
        });
        match taken {
            Some((gate, template, policy)) => {
                Either::Left(Box::pin(gate.admit(self.router.clone(), req, template, policy)))
            }
            None => Either::Right(self.router.call(req)),
        }
    }
}

impl Gate {
    /// Spends the request's per-IP login budget: over it, the refusal; within it, the router.
    async fn admit(
        self: Arc<Self>,
        router: Router,
        mut req: Request,
        template: Arc<str>,
        policy: RoutePolicy,
    ) -> Result<Response, Infallible> {
        let state = &self.state;
        match rate_limit::spend_login_ip(state, context::client_ip(state, &req)).await {
            Ok(spent) => {
                req.extensions_mut().insert(spent);
                router.oneshot(req).await
            }
            Err(refused) => Ok(refuse(state, req, template, policy, refused).await),
        }
    }
}

/// The refusal as the stack would answer it, in the stack's order: context, the refused body
/// read, the 429, the security headers, the access line.
async fn refuse(
    state: &AppState,
    mut req: Request,
    template: Arc<str>,
    policy: RoutePolicy,
    refused: ApiError,
) -> Response {
    let context = context::Context::begin_before_routing(state, &mut req, template);
    drain_within(req, &state.settings.limits).await;
    let mut res = refused.into_response();
    security_headers::apply(state, policy, &mut res);
    context.finish(res)
}

/// [`drain_body`], bounded by `limits.request_timeout` as the stack's timeout bounds it there.
/// Almost always the body came with the head and is read at the first poll: only a body still
/// on its way needs a timer (the stack's timeout layer set one for every request).
async fn drain_within(req: Request, limits: &LimitsConfig) {
    let mut drain = pin!(drain_body(req, limits.max_body_bytes));
    let done = poll_fn(|cx| Poll::Ready(drain.as_mut().poll(cx).is_ready())).await;
    if !done {
        // Past the timeout the body is left unread, and hyper closes the connection.
        let _ = tokio::time::timeout(limits.request_timeout, drain).await;
    }
}
