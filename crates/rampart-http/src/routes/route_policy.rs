//! Route policy: what the outer middlewares do for a route, declared on the line that routes it.
//!
//! The security headers, the per-IP budgets and the guard run outside the router (they are
//! applied with `Router::layer`, so they see a response of every kind: a handler's, a 405, the
//! fallback's 404). What each of them does depends on the route: whether the answer may be
//! cached, which CSP it gets, which budget it spends, whether a cookie request must carry the
//! CSRF header, whether an API key may be presented. That is a [`RoutePolicy`], and every route
//! is registered through [`Routes::route`] together with its policy, so a route cannot be added
//! without saying what it is:
//!
//! ```text
//! .route("/login", SIGN_IN, post(login::login))
//! ```
//!
//! The middlewares read the policy from the [`RouteTable`], by the route template axum matched
//! (`MatchedPath`, the same key as the metrics): one hash lookup, no allocation. A request that
//! matched no route (a 404 of the fallback; every `/ui` path while the pages are off) gets the
//! policy of the area its path is under, declared with [`Routes::nest`] or
//! [`Routes::unmatched`]: a 404 under `/api` is still `private, no-store`, under `/ui` still a
//! page. A 405 is answered by the matched route, so it has that route's policy.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::handler::Handler;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, Route};
use http::Method;
use tower::{Layer, Service};

use crate::AppState;

/// What the `security_headers` layer lets keep a copy of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// `no-store`: credentials, admin data, pages.
    NoStore,
    /// `private, no-store`: records, which belong to one caller, never in a shared cache.
    PrivateNoStore,
    /// The layer sets nothing: the handler says (the JWKS, the pages' content-hashed assets) or
    /// the answer is public and plain (the probes, the OpenAPI document).
    ByHandler,
}

/// What the answer is, for its CSP and for how the `problem` layer shows an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// JSON: nothing may load. Errors are problem+json.
    Json,
    /// A page: the page CSP; with the pages on, an error is a page too.
    Page,
}

/// Which per-IP budget the `rate_limit` layer spends, before any handler or database work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// None: the probes, which orchestrators call constantly and which do no work worth
    /// limiting (limiting them would get a healthy instance killed during an attack).
    Exempt,
    /// The API budget (`rate_limit.api_per_ip_per_minute`).
    Api,
    /// The per-IP login budget instead, spent before the body is read; the handler's flow spends
    /// the account and global budgets and, told by `LoginIpSpent`, not the per-IP one again.
    /// Only for routes that are a login attempt whatever the body says: the ones that decide it
    /// from the body (the token endpoint's grants, the passkey ceremonies, the sign-in pages)
    /// spend the API budget here and the whole login budget in their flow.
    Login,
}

/// What the `guard` layer asks of a cookie request on an unsafe method, besides an allowed
/// `Origin` and no `Sec-Fetch-Site: cross-site` (checked on every route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csrf {
    /// The `X-CSRF-Token` header: the route acts through the session cookie.
    Header,
    /// Nothing more: the route does not act through the session cookie (it creates one, or
    /// authenticates by a token in the body). The Origin checks still stop login CSRF.
    NoSession,
    /// A page's form: the token is in the body, checked by `ui::forms` (`SignedInForm`,
    /// `PreSessionForm`, the only ways a page reads a form) before the handler runs. `Origin:
    /// null` is accepted together with `Sec-Fetch-Site: same-origin` (see `guard.rs`).
    Form,
}

/// Whether the `guard` layer lets an API key reach the route (403 otherwise, before any handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKeys {
    /// Every route that manages credentials or users: a leaked key that reached them could mint
    /// itself successors or end its owner's sessions, and so outlive its own revocation.
    Refused,
    /// On `GET` and `HEAD` only (reading who one is).
    ReadOnly,
    /// The record API.
    Accepted,
}

impl ApiKeys {
    pub fn allow(self, method: &Method) -> bool {
        match self {
            Self::Refused => false,
            Self::ReadOnly => matches!(*method, Method::GET | Method::HEAD),
            Self::Accepted => true,
        }
    }
}

/// A route's policy, one value per dimension. Built from [`RoutePolicy::JSON`] with the `const`
/// setters, so each named policy says how it differs from a plain JSON route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    pub caching: Caching,
    pub content: Content,
    pub budget: Budget,
    pub csrf: Csrf,
    pub api_keys: ApiKeys,
}

impl RoutePolicy {
    /// A public JSON route: no cache header from the layer, the JSON CSP, the API budget, the
    /// CSRF header on cookie requests, no API keys.
    pub const JSON: Self = Self {
        caching: Caching::ByHandler,
        content: Content::Json,
        budget: Budget::Api,
        csrf: Csrf::Header,
        api_keys: ApiKeys::Refused,
    };

    pub const fn caching(self, caching: Caching) -> Self {
        Self { caching, ..self }
    }
    pub const fn content(self, content: Content) -> Self {
        Self { content, ..self }
    }
    pub const fn budget(self, budget: Budget) -> Self {
        Self { budget, ..self }
    }
    pub const fn csrf(self, csrf: Csrf) -> Self {
        Self { csrf, ..self }
    }
    pub const fn api_keys(self, api_keys: ApiKeys) -> Self {
        Self { api_keys, ..self }
    }
}

/// The policies of a built router, for the middlewares. Cheap to clone.
#[derive(Clone)]
pub struct RouteTable(Arc<Table>);

struct Table {
    /// By route template, as axum's `MatchedPath` spells it.
    routes: HashMap<String, RoutePolicy>,
    /// Areas for unmatched paths, longest prefix first, so the narrowest area wins.
    areas: Vec<(String, RoutePolicy)>,
    /// An unmatched path under no area.
    outside: RoutePolicy,
}

impl RouteTable {
    /// The policy of the request: its route's, or for an unmatched path its area's. (Every
    /// route has an entry: `Routes::route` is the only way to add one, and a test checks that
    /// axum's matched template finds it.)
    pub fn of(&self, req: &Request) -> RoutePolicy {
        self.matched(req).unwrap_or_else(|| self.unmatched(req.uri().path()))
    }

    /// The policy of the route the request matched, if it matched one.
    fn matched(&self, req: &Request) -> Option<RoutePolicy> {
        req.extensions().get::<MatchedPath>().and_then(|m| self.0.routes.get(m.as_str())).copied()
    }

    /// The routes that spend the per-IP login budget and whose template is one exact path (no
    /// parameter), with their policies: the ones `middleware::front` may refuse before routing.
    /// A request for exactly that path is always matched to that route (axum matches a static
    /// segment before a parameter), which `the_login_routes_taken_before_routing_are_the_routers`
    /// checks against axum's own matching.
    pub fn exact_login_routes(&self) -> Vec<(Arc<str>, RoutePolicy)> {
        (self.0.routes.iter())
            .filter(|(template, policy)| policy.budget == Budget::Login && !template.contains('{'))
            .map(|(template, policy)| (Arc::from(template.as_str()), *policy))
            .collect()
    }

    fn unmatched(&self, path: &str) -> RoutePolicy {
        self.0.areas.iter().find(|(prefix, _)| under(path, prefix)).map_or(self.0.outside, |(_, policy)| *policy)
    }
}

/// `path` is `prefix` or below it (`/api` and `/api/x`, not `/apix`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A router under construction, with the policy of each route beside it. The only way a router
/// module adds a route (see the module doc).
///
/// The handlers are kept with their paths and put into an axum router only at the end
/// ([`Routes::with_state`]), so that nesting prefixes the paths and the router is flat. axum's
/// own `nest` wraps every nested route in a layer that rewrites the request's URI without the
/// prefix, an allocation and a `format!` on every request under `/auth`, `/api`, `/admin` and
/// `/ui/admin` (about 3 000 instructions, callgrind, issue 17), for handlers that never look at
/// the path.
pub struct Routes {
    /// Each route's template relative to this set, its policy and its handler, in the order
    /// declared.
    routes: Vec<(String, RoutePolicy, MethodRouter<AppState>)>,
    /// The router of the fallback, once one is set: only the outermost set has one.
    fallback: Option<Router<AppState>>,
    areas: Vec<(String, RoutePolicy)>,
    outside: RoutePolicy,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self { routes: Vec::new(), fallback: None, areas: Vec::new(), outside: RoutePolicy::JSON }
    }

    /// Routes `path` to `handler` under `policy`.
    pub fn route(mut self, path: &'static str, policy: RoutePolicy, handler: MethodRouter<AppState>) -> Self {
        self.routes.push((path.to_owned(), policy, handler));
        self
    }

    /// Nests `inner` at `prefix`: its routes at their paths under `prefix`, as axum's `nest`
    /// would match them (see the type's doc); an unmatched path under `prefix` gets `unmatched`
    /// unless a narrower area of `inner` says otherwise.
    pub fn nest(mut self, prefix: &'static str, unmatched: RoutePolicy, inner: Routes) -> Self {
        assert!(inner.fallback.is_none(), "routes nested at {prefix} have a fallback of their own");
        self.routes
            .extend(inner.routes.into_iter().map(|(path, policy, handler)| (nested(prefix, &path), policy, handler)));
        self.areas.push((prefix.to_owned(), unmatched));
        self.areas.extend(inner.areas.into_iter().map(|(path, policy)| (nested(prefix, &path), policy)));
        self
    }

    /// Merges `other`'s routes and areas, paths unchanged (axum's `merge`).
    pub fn merge(mut self, other: Routes) -> Self {
        if other.fallback.is_some() {
            assert!(self.fallback.is_none(), "two sets of routes with a fallback each are merged");
            self.fallback = other.fallback;
        }
        self.routes.extend(other.routes);
        self.areas.extend(other.areas);
        self
    }

    /// An unmatched path under `prefix` (which need not be nested) gets `policy`.
    pub fn unmatched(mut self, prefix: &'static str, policy: RoutePolicy) -> Self {
        self.areas.push((prefix.to_owned(), policy));
        self
    }

    /// The areas without the routes: the paths are not routed (every one is the fallback's
    /// 404) but still get their area's policy.
    pub fn unrouted(self) -> Self {
        Self { areas: self.areas, ..Self::new() }
    }

    /// axum's `Router::route_layer`: `layer` wraps every route added so far (each whole
    /// `MethodRouter`, so a 405 for a route's path passes through it too, as it did through
    /// axum's), and no 404 of the fallback.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        self.routes = (self.routes.into_iter())
            .map(|(path, policy, handler)| (path, policy, handler.layer::<_, Infallible>(layer.clone())))
            .collect();
        self
    }

    /// What answers a path no route matched, and the policy of such a path under no area.
    pub fn fallback<H, T>(mut self, policy: RoutePolicy, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.fallback = Some(Router::new().fallback(handler));
        self.outside = policy;
        self
    }

    /// The policy table alone, without building the router.
    pub fn table(&self) -> RouteTable {
        let mut areas = self.areas.clone();
        areas.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let routes = self.routes.iter().map(|(path, policy, _)| (path.clone(), *policy)).collect();
        RouteTable(Arc::new(Table { routes, areas, outside: self.outside }))
    }

    /// The router, ready to serve, and its policy table.
    pub fn with_state(self, state: AppState) -> (Router, RouteTable) {
        let table = self.table();
        let router = (self.routes.into_iter())
            .fold(self.fallback.unwrap_or_default(), |router, (path, _, handler)| router.route(&path, handler));
        (router.with_state(state), table)
    }

    /// The same paths as the router's, each answered by an empty handler: the tests route
    /// requests through it to check that every template is the key axum matches.
    #[cfg(test)]
    fn shadow(&self) -> Router {
        (self.routes.iter())
            .fold(Router::new(), |router, (path, _, _)| router.route(path, axum::routing::any(|| async {})))
    }
}

/// The template of `path` nested at `prefix`, spelled as axum spells the matched path.
fn nested(prefix: &str, path: &str) -> String {
    if path == "/" { prefix.to_owned() } else { format!("{prefix}{path}") }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::middleware::{Next, from_fn};
    use axum::response::Response;
    use tower::ServiceExt;

    use super::*;

    /// What the middlewares see for `method path`, found through axum's own matching of the
    /// shadow router (with a fallback), not through the table's spelling of the templates: the
    /// matched route's policy, if a declared route matched, and the policy.
    async fn seen(routes: &Routes, path: &str, method: Method) -> (Option<RoutePolicy>, RoutePolicy) {
        let table = routes.table();
        let probe = move |req: Request, _next: Next| {
            let seen = (table.matched(&req), table.of(&req));
            async move {
                let mut res = Response::new(Body::empty());
                res.extensions_mut().insert(seen);
                res
            }
        };
        let shadow = routes.shadow().fallback(|| async {}).layer(from_fn(probe));
        let req = http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let res = shadow.oneshot(req).await.unwrap();
        *res.extensions().get::<(Option<RoutePolicy>, RoutePolicy)>().unwrap()
    }

    async fn policy_seen(routes: &Routes, path: &str, method: Method) -> RoutePolicy {
        seen(routes, path, method).await.1
    }

    /// A concrete path for a template: every `{param}` replaced by a plain value.
    fn concrete(template: &str) -> String {
        template.split('/').map(|s| if s.starts_with('{') { "x1" } else { s }).collect::<Vec<_>>().join("/")
    }

    /// Every route of the real router has its own entry in the table: each template, requested,
    /// is found under the key axum matched (nesting included), so no route falls to its area's
    /// policy by accident; no template is declared twice; and every path of the contract
    /// (the OpenAPI document) and every page is there.
    #[tokio::test]
    async fn every_route_of_the_router_has_its_declared_policy() {
        let routes = super::super::declared(true, |admin| admin);
        let table = routes.table();
        let mut declared_once = std::collections::HashSet::new();
        for (template, declared, _) in &routes.routes {
            assert!(declared_once.insert(template.as_str()), "{template} is declared twice");
            let (matched, _) = seen(&routes, &concrete(template), Method::GET).await;
            assert_eq!(matched, Some(*declared), "{template}");
            assert!(table.0.routes.contains_key(template.as_str()), "{template}");
        }
        for must in ["/auth/login", "/auth/me", "/admin/users/{id}", "/api/{resource}/{id}", "/ui", "/ui/admin"] {
            assert!(table.0.routes.contains_key(must), "{must} has no policy");
        }
        let loaded = rampart_core::config::load(None, Vec::new()).unwrap();
        let settings = rampart_core::config::check(loaded).accept(|_| true).unwrap().settings;
        let doc = crate::openapi::document(&settings);
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 20);
        for path in paths.keys() {
            let (matched, _) = seen(&routes, &concrete(path), Method::GET).await;
            assert!(matched.is_some(), "{path} of the contract has no policy");
        }
    }

    /// The routes `middleware::front` refuses before routing are exactly the login-budget routes,
    /// and a request for each path (whatever its method) is matched by axum to that route with
    /// that policy, so a refusal in front of the router is the one the router's stack would give.
    #[tokio::test]
    async fn the_login_routes_taken_before_routing_are_the_routers() {
        let routes = super::super::declared(true, |admin| admin);
        let taken = routes.table().exact_login_routes();
        let logins: Vec<&str> = (routes.routes.iter())
            .filter(|(_, policy, _)| policy.budget == Budget::Login)
            .map(|(template, _, _)| template.as_str())
            .collect();
        assert_eq!(
            taken.iter().map(|(t, _)| &**t).collect::<std::collections::BTreeSet<_>>(),
            logins.into_iter().collect()
        );
        for must in ["/auth/login", "/auth/register", "/auth/password/forgot", "/auth/mfa/verify"] {
            assert!(taken.iter().any(|(t, _)| &**t == must), "{must} is not taken before routing");
        }
        for (path, policy) in &taken {
            for method in [Method::POST, Method::GET, Method::OPTIONS] {
                assert_eq!(seen(&routes, path, method.clone()).await, (Some(*policy), *policy), "{method} {path}");
            }
        }
    }

    /// Unmatched paths get their area's policy, the narrowest area first, and a path under no
    /// area the fallback's; a prefix is a whole segment.
    #[tokio::test]
    async fn unmatched_paths_get_their_areas_policy() {
        let page = RoutePolicy::JSON.content(Content::Page);
        let asset = page.caching(Caching::ByHandler);
        let api = RoutePolicy::JSON.caching(Caching::PrivateNoStore);
        let exempt = RoutePolicy::JSON.budget(Budget::Exempt);
        let routes = Routes::new()
            .route("/ui", page, axum::routing::get(|| async {}))
            .unmatched("/ui", page)
            .unmatched("/ui/assets", asset)
            .nest("/api", api, Routes::new().route("/{resource}", exempt, axum::routing::get(|| async {})))
            .fallback(RoutePolicy::JSON.csrf(Csrf::NoSession), || async {});
        assert_eq!(policy_seen(&routes, "/api/x", Method::GET).await, exempt);
        assert_eq!(policy_seen(&routes, "/api/x", Method::PUT).await, exempt);
        assert_eq!(policy_seen(&routes, "/api", Method::GET).await, api);
        assert_eq!(policy_seen(&routes, "/api/x/y/z", Method::GET).await, api);
        assert_eq!(policy_seen(&routes, "/ui/nope", Method::GET).await, page);
        assert_eq!(policy_seen(&routes, "/ui/assets", Method::GET).await, asset);
        assert_eq!(policy_seen(&routes, "/ui/assets/a/b", Method::GET).await, asset);
        let outside = RoutePolicy::JSON.csrf(Csrf::NoSession);
        assert_eq!(policy_seen(&routes, "/apix", Method::GET).await, outside);
        assert_eq!(policy_seen(&routes, "/uix", Method::GET).await, outside);
        // Pages off: the areas stay.
        let off = routes.unrouted();
        assert!(off.routes.is_empty());
        assert_eq!(off.table().unmatched("/ui/login"), page);
    }

    #[test]
    fn api_keys_read_only_means_get_and_head() {
        assert!(ApiKeys::ReadOnly.allow(&Method::GET) && ApiKeys::ReadOnly.allow(&Method::HEAD));
        assert!(!ApiKeys::ReadOnly.allow(&Method::PATCH) && !ApiKeys::ReadOnly.allow(&Method::POST));
        assert!(!ApiKeys::Refused.allow(&Method::GET) && ApiKeys::Accepted.allow(&Method::DELETE));
    }
}
