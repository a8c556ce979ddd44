//! Route policy (`routes::route_policy`), attacked one dimension at a time: each route gets what
//! its declaration says (budget, caching, CSP, CSRF, API keys), and so do its 405s; a path no
//! route matched gets the policy of its area.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::ui::PAGE_CSP;

const JSON_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Budget: with the per-IP login budget spent, the routes declared with it are refused before
/// their handler: a body the handler would refuse (415) is a 429, and so is a 405. The routes
/// that only their body makes a login (the token endpoint, the passkey ceremonies) and the
/// sign-in page are not: they parse first and spend the login budget in their flow.
#[tokio::test]
async fn login_budget_routes_are_refused_before_their_handler() {
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "2").spawn().await;
    for _ in 0..2 {
        app.login(&unique_email(), OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    }
    for path in ["/auth/login", "/auth/register", "/auth/mfa/verify", "/auth/password/forgot"] {
        let r = TestApp::send(app.request(Method::POST, path).body("{}")).await;
        r.assert_problem(429);
        assert_eq!(r.header("ratelimit-policy"), Some("\"login-ip\";q=2;w=60"), "{path}");
    }
    let r = app.get("/auth/login").await;
    r.assert_problem(429);
    assert_eq!(r.header("ratelimit-policy"), Some("\"login-ip\";q=2;w=60"));
    for path in ["/auth/token", "/auth/passkeys/login/start", "/auth/passkeys/login/finish", "/auth/mfa/passkey/start"]
    {
        TestApp::send(app.request(Method::POST, path).body("{}")).await.assert_problem(415);
    }
    assert_eq!(app.get("/ui/login").await.status, 200);
}

/// Caching and CSP: a 405 has its route's policy, a 404 its area's, whatever answered it.
#[tokio::test]
async fn a_404_or_405_gets_the_caching_and_csp_of_its_route_or_area() {
    let app = TestApp::spawn().await;
    let put = |path: &str| TestApp::send(app.request(Method::PUT, path));
    for (what, r, status, cache) in [
        ("405 of a record route", put("/api/orders").await, 405, Some("private, no-store")),
        ("404 under /api", app.get("/api/orders/x1/x2").await, 404, Some("private, no-store")),
        ("the bare /api", app.get("/api").await, 404, Some("private, no-store")),
        ("405 of an /auth route", put("/auth/sessions").await, 405, Some("no-store")),
        ("405 of a probe", put("/healthz").await, 405, None),
        ("404 under no area", app.get("/apix").await, 404, None),
    ] {
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.headers.get_all("cache-control").iter().count(), usize::from(cache.is_some()), "{what}");
        assert_eq!(r.header("cache-control"), cache, "{what}");
        assert_eq!(r.header("content-security-policy"), Some(JSON_CSP), "{what}");
    }
    // An /admin route's 405 (or its 401, should the gate answer first) is never stored either.
    let r = put("/admin/users").await;
    assert!(r.status == 405 || r.status == 401, "{}", r.status);
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Pages off: nothing under /ui is routed, and every 404 there still has the pages' policy.
    let off = TestApp::builder().env("UI__ENABLED", "false").spawn().await;
    for path in ["/ui", "/ui/login", "/ui/admin/users"] {
        let r = off.get(path).await;
        r.assert_problem(404);
        assert_eq!(r.header("content-security-policy"), Some(PAGE_CSP), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}

/// CSRF: a cookie request needs the header only on a route that acts through the session; a
/// route that does not (a token in the body) is judged on that token; `Origin: null` passes only
/// on a page's form, and only with `Sec-Fetch-Site: same-origin`.
#[tokio::test]
async fn the_csrf_header_and_a_null_origin_follow_the_route() {
    let app = TestApp::spawn().await;
    let (_, s) = app.user().await;
    let with_cookie = |method: Method, path: &str| app.request(method, path).header("cookie", s.cookie_header());
    let change = json!({ "current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD });
    let r = TestApp::send(with_cookie(Method::POST, "/auth/password/change").json(&change)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let refresh = json!({ "grant_type": "refresh_token", "refresh_token": "x".repeat(43) });
    TestApp::send(with_cookie(Method::POST, "/auth/token").json(&refresh)).await.assert_problem(401);
    let reset = json!({ "token": "x".repeat(43), "new_password": OTHER_STRONG_PASSWORD });
    TestApp::send(with_cookie(Method::POST, "/auth/password/reset").json(&reset)).await.assert_problem(400);

    let null_origin = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    let mut logout_api = with_cookie(Method::POST, "/auth/logout").header("x-csrf-token", &s.csrf);
    let mut logout_page = with_cookie(Method::POST, "/ui/logout")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", s.csrf));
    for (name, value) in null_origin {
        logout_api = logout_api.header(name, value);
        logout_page = logout_page.header(name, value);
    }
    assert_eq!(TestApp::send(logout_api).await.status, 403);
    let without_fetch_site = with_cookie(Method::POST, "/ui/logout")
        .header("origin", "null")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={}", s.csrf));
    assert_eq!(TestApp::send(without_fetch_site).await.status, 403);
    assert_eq!(app.get_as("/auth/me", &s).await.status, 200, "the refused requests ended nothing");
    let r = TestApp::send(logout_page).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(app.get_as("/auth/me", &s).await.status, 401);
}

/// API keys: a key is looked at only where the route accepts keys (an unknown one is then 401),
/// `/auth/me` only to read; everywhere else, pages and probes included, it is refused before
/// anything (403). A 404 under `/api` is the area's: the key passes, nothing is there.
#[tokio::test]
async fn api_keys_reach_only_the_routes_that_accept_them() {
    let app = TestApp::spawn().await;
    let key = format!("rpk_{}_{}", "0".repeat(32), "A".repeat(43));
    for (method, path, status) in [
        (Method::GET, "/auth/me", 401),
        (Method::HEAD, "/auth/me", 401),
        (Method::GET, "/api/orders", 401),
        (Method::GET, "/api/orders/x1/x2", 404),
        (Method::PATCH, "/auth/me", 403),
        (Method::GET, "/auth/sessions", 403),
        (Method::GET, "/auth/nope", 403),
        (Method::GET, "/admin/users", 403),
        (Method::GET, "/ui/account", 403),
        (Method::GET, "/healthz", 403),
    ] {
        let r = TestApp::send(app.request(method.clone(), path).bearer_auth(&key)).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
}
