//! The pages under `/ui`, without a browser: headers (the exact page CSP), redirects, the form
//! CSRF token and the pre-session (login CSRF), Origin / Sec-Fetch-Site, errors as HTML pages
//! with the API's status, `[ui] enabled = false`. The browser suite (`browser.rs`) proves the
//! rest in a real Chromium.

use std::collections::BTreeMap;

use reqwest::Method;

use crate::helpers::*;

pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'";

/// A browser without the browser: keeps the cookies the server sets, sends them back, and reads
/// forms' hidden `csrf_token`.
pub struct Visitor<'a> {
    pub app: &'a TestApp,
    pub cookies: BTreeMap<String, String>,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep_cookies(&mut self, r: &Resp) {
        for c in r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let (name, value) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let r = TestApp::send(self.app.request(Method::GET, path).header("cookie", self.cookie_header())).await;
        self.keep_cookies(&r);
        r
    }

    /// A form post as a browser on our own origin sends it.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        self.post_with(path, fields, &[]).await
    }

    pub async fn post_with(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Resp {
        let mut rb = self
            .app
            .request(Method::POST, path)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = TestApp::send(rb).await;
        self.keep_cookies(&r);
        r
    }

    /// Opens `path` and returns the `csrf_token` of its first form.
    pub async fn form_token(&mut self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        csrf_in(&r.text())
    }

    /// Signs in through `/ui/login`; asserts the 303 to the account.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        let token = self.form_token("/ui/login").await;
        let r = self.post("/ui/login", &[("csrf_token", &token), ("email", email), ("password", password)]).await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(r.header("location"), Some("/ui/account"));
    }

    pub fn session(&self) -> Option<&String> {
        self.cookies.get("__Host-rampart_session")
    }
}

pub fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="csrf_token" value=""#).unwrap_or_else(|| panic!("no csrf_token in {html}"));
    let rest = &html[at + r#"name="csrf_token" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// No inline style, event handler or script body: the page CSP would block them.
pub fn assert_no_inline_code(html: &str) {
    // Inside tags and outside quoted attribute values only: escaped text such as
    // `&lt;img onerror=...&gt;` is no handler. (Values are quoted and their `"` escaped.)
    let tags: Vec<String> = html
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap().split('"').step_by(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(!tags.iter().any(|t| t.contains(" style=")), "inline style: {html}");
    let handler = tags.iter().any(|tag| {
        tag.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        })
    });
    assert!(!handler, "inline event handler: {html}");
    for (i, _) in html.match_indices("<script") {
        let tag_end = html[i..].find('>').unwrap() + i;
        assert!(html[i..tag_end].contains(" src="), "inline script: {html}");
        assert!(html[tag_end + 1..].starts_with("</script>"), "inline script body: {html}");
    }
}

fn assert_page(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{}", r.text());
    assert_eq!(r.header("content-security-policy"), Some(PAGE_CSP));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.text().starts_with("<!DOCTYPE html>"), "{}", r.text());
    assert_no_inline_code(&r.text());
}

#[tokio::test]
async fn pages_get_the_page_csp_and_the_security_headers_and_assets_are_immutable() {
    let app = TestApp::spawn().await;
    let r = app.get("/ui/login").await;
    assert_page(&r, 200);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name}");
    }
    assert_eq!(r.headers.get_all("content-security-policy").iter().count(), 1);
    // The JSON API keeps its own policy.
    let json = app.get("/auth/me").await;
    assert_eq!(
        json.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    );

    let html = r.text();
    assert_no_inline_code(&html);
    for (ext, content_type) in [("css", "text/css; charset=utf-8"), ("js", "text/javascript; charset=utf-8")] {
        let start = html.find("/ui/assets/ui.").unwrap();
        let name = html[start..].split('"').next().unwrap();
        let name = if name.ends_with(ext) {
            name.to_owned()
        } else {
            let i = html.rfind("/ui/assets/ui.").unwrap();
            html[i..].split('"').next().unwrap().to_owned()
        };
        assert!(name.ends_with(ext), "{name}");
        let a = app.get(&name).await;
        assert_eq!(a.status, 200, "{name}");
        assert_eq!(a.header("content-type"), Some(content_type));
        assert_eq!(a.header("cache-control"), Some("public, max-age=31536000, immutable"));
        // A name whose hash is not the content's is unknown.
        let stale = name.replacen("/ui/assets/ui.", "/ui/assets/ui.0", 1);
        assert_eq!(app.get(&stale).await.status, 404);
    }
    assert_eq!(app.get("/ui/assets/..%2f..%2fCargo.toml").await.status, 404);
}

#[tokio::test]
async fn the_start_page_and_signed_in_pages_redirect_by_session() {
    let app = TestApp::spawn().await;
    let (email, _) = app.user().await;
    let mut v = Visitor::new(&app);
    for path in ["/ui/", "/ui/account"] {
        let r = v.get(path).await;
        assert_eq!((r.status, r.header("location")), (303, Some("/ui/login")), "{path}");
    }
    v.sign_in(&email, STRONG_PASSWORD).await;
    let r = v.get("/ui/").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")));
    let r = v.get("/ui/account").await;
    assert_page(&r, 200);
    assert!(r.text().contains(&email));
    let r = v.get("/ui/login").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")));
}

/// The page sets the same cookie `POST /auth/login` sets, opens a session through the same
/// flow (audited `login_success`), and the session works on the JSON API too.
#[tokio::test]
async fn signing_in_on_the_page_sets_the_api_session_cookie() {
    let app = TestApp::spawn().await;
    let (email, api) = app.user().await;
    let before = app.audit_count("login_success").await;
    let mut v = Visitor::new(&app);
    let token = v.form_token("/ui/login").await;
    let pre = v.cookies.get("__Host-rampart_presession").cloned().expect("a pre-session cookie");
    let r = v.post("/ui/login", &[("csrf_token", &token), ("email", &email), ("password", STRONG_PASSWORD)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
    let set: Vec<&str> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("__Host-rampart_session=")).expect("session cookie");
    let attrs = |c: &str| c.split(';').skip(1).map(str::trim).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(attrs(session), attrs(&api.set_cookie), "the page's cookie differs from the API's");
    assert!(set.iter().any(|c| c.starts_with("__Host-rampart_presession=;") && c.contains("Max-Age=0")));
    assert_eq!(app.audit_count("login_success").await, before + 1);
    // The same session on the API.
    let me = TestApp::send(
        app.request(Method::GET, "/auth/me")
            .header("cookie", format!("__Host-rampart_session={}", v.session().unwrap())),
    )
    .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], email.as_str());
    // The pre-session token is spent with its cookie.
    assert!(!pre.is_empty());
    let pre_cookie = set.iter().find(|c| c.starts_with("__Host-rampart_presession=")).unwrap();
    assert!(pre_cookie.contains("HttpOnly") && pre_cookie.contains("Secure") && pre_cookie.contains("SameSite=Lax"));
}

/// Login CSRF: a sign-in form is taken only with the token of the pre-session cookie the same
/// browser holds. Without the cookie, with another browser's token, or with none, nobody is
/// signed in and nothing is audited as a login.
#[tokio::test]
async fn sign_in_needs_the_pre_session_cookie_and_its_token() {
    let app = TestApp::spawn().await;
    let (email, _) = app.user().await;
    let before = app.audit_count("login_success").await;
    let mut attacker = Visitor::new(&app);
    let attacker_token = attacker.form_token("/ui/login").await;
    let mut victim = Visitor::new(&app);
    let victim_token = victim.form_token("/ui/login").await;
    let creds = [("email", email.as_str()), ("password", STRONG_PASSWORD)];

    // No pre-session cookie at all (a foreign page's auto-submitted form, say).
    let mut cookieless = Visitor::new(&app);
    let r = cookieless.post("/ui/login", &[&[("csrf_token", attacker_token.as_str())][..], &creds].concat()).await;
    assert_page(&r, 403);
    // The victim's cookie with the attacker's token.
    let r = victim.post("/ui/login", &[&[("csrf_token", attacker_token.as_str())][..], &creds].concat()).await;
    assert_page(&r, 403);
    // No token, an empty one, two of them.
    assert_page(&victim.post("/ui/login", &creds).await, 403);
    assert_page(&victim.post("/ui/login", &[&[("csrf_token", "")][..], &creds].concat()).await, 403);
    let two = [("csrf_token", victim_token.as_str()), ("csrf_token", victim_token.as_str())];
    assert_page(&victim.post("/ui/login", &[&two[..], &creds].concat()).await, 403);
    // A forged cookie value with a token computed without the server's key.
    let mut forger = Visitor::new(&app);
    forger.cookies.insert("__Host-rampart_presession".into(), format!("{}.{}", 1_900_000_000, "A".repeat(43)));
    assert_page(&forger.post("/ui/login", &[&[("csrf_token", "AAAA")][..], &creds].concat()).await, 403);
    for v in [&cookieless, &victim, &forger] {
        assert!(v.session().is_none(), "signed in without a valid pre-session");
    }
    assert_eq!(app.audit_count("login_success").await, before);
    // The right pair works.
    let r = victim.post("/ui/login", &[&[("csrf_token", victim_token.as_str())][..], &creds].concat()).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(victim.session().is_some());
}

/// A signed-in form is taken only with the session's CSRF token in the body: none, a wrong one,
/// another session's, or the token in the API's header instead are a 403 page and change
/// nothing (the session survives the refused sign-out).
#[tokio::test]
async fn signed_in_forms_need_the_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let (email, other) = app.user().await;
    let mut v = Visitor::new(&app);
    v.sign_in(&email, STRONG_PASSWORD).await;
    let token = csrf_in(&v.get("/ui/account").await.text());
    let cookie = v.session().cloned().unwrap();

    assert_page(&v.post("/ui/logout", &[]).await, 403);
    assert_page(&v.post("/ui/logout", &[("csrf_token", "x")]).await, 403);
    assert_page(&v.post("/ui/logout", &[("csrf_token", &other.csrf)]).await, 403);
    assert_page(&v.post_with("/ui/logout", &[], &[("x-csrf-token", &token)]).await, 403);
    assert_eq!(v.session(), Some(&cookie));
    assert_page(&v.get("/ui/account").await, 200);

    let r = v.post("/ui/logout", &[("csrf_token", &token)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login?notice=signed_out")));
    assert!(v.session().is_none(), "the cookie is cleared");
    let api = TestApp::send(
        app.request(Method::GET, "/auth/me").header("cookie", format!("__Host-rampart_session={cookie}")),
    )
    .await;
    assert_eq!(api.status, 401, "the session is ended, not just forgotten by the browser");
}

/// The same Origin / Sec-Fetch-Site rules as the API, before any form is read.
#[tokio::test]
async fn foreign_origins_and_cross_site_posts_are_refused() {
    let app = TestApp::spawn().await;
    let (email, _) = app.user().await;
    let mut v = Visitor::new(&app);
    let token = v.form_token("/ui/login").await;
    let fields = [("csrf_token", token.as_str()), ("email", email.as_str()), ("password", STRONG_PASSWORD)];
    assert_page(&v.post_with("/ui/login", &fields, &[("origin", "https://evil.example")]).await, 403);
    assert_page(&v.post_with("/ui/login", &fields, &[("sec-fetch-site", "cross-site")]).await, 403);
    assert!(v.session().is_none());
    let r =
        v.post_with("/ui/login", &fields, &[("origin", "http://localhost"), ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let token = csrf_in(&v.get("/ui/account").await.text());
    assert_page(
        &v.post_with("/ui/logout", &[("csrf_token", &token)], &[("origin", "https://evil.example")]).await,
        403,
    );
    assert_page(&v.get("/ui/account").await, 200);
}

/// Errors are pages with the status the API gives: 401 for a wrong password (with the email
/// kept and the message tied to the form), 423 with Retry-After when locked, 400 for an unknown
/// field, 415 for JSON, 404 for an unknown page; never problem+json.
#[tokio::test]
async fn errors_are_pages_with_the_apis_status() {
    let app = TestApp::builder().env("RATE_LIMIT__LOCKOUT_AFTER_FAILURES", "2").spawn().await;
    let (email, _) = app.user().await;
    let mut v = Visitor::new(&app);
    let token = v.form_token("/ui/login").await;
    let wrong = [("csrf_token", token.as_str()), ("email", email.as_str()), ("password", "not the password at all")];
    let r = v.post("/ui/login", &wrong).await;
    assert_page(&r, 401);
    let html = r.text();
    assert!(html.contains("Invalid email or password") && html.contains("error-summary"), "{html}");
    assert!(html.contains(&format!(r#"value="{email}""#)), "the email is kept: {html}");
    let r = v.post("/ui/login", &wrong).await;
    assert_page(&r, 401);
    let r = v.post("/ui/login", &wrong).await;
    assert_page(&r, 423);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);

    let bad =
        v.post("/ui/login", &[("csrf_token", &token), ("email", &email), ("password", "x"), ("role", "admin")]).await;
    assert_page(&bad, 400);
    let json =
        TestApp::send(app.request(Method::POST, "/ui/login").header("content-type", "application/json").body("{}"))
            .await;
    assert_page(&json, 415);
    assert_page(&app.get("/ui/nope").await, 404);
    let put = TestApp::send(app.request(Method::PUT, "/ui/login")).await;
    assert_page(&put, 405);
    // An invalid email is named next to its field.
    let r =
        v.post("/ui/login", &[("csrf_token", &token), ("email", "not-an-email"), ("password", STRONG_PASSWORD)]).await;
    assert_page(&r, 400);
    assert!(r.text().contains(r#"aria-describedby="f-email-error""#), "{}", r.text());
}

/// Off: every `/ui` path is the API's 404, and the mailed links go to the application's own
/// paths instead of pages that are not there.
#[tokio::test]
async fn a_disabled_ui_is_not_there() {
    let sink = crate::mail_sink::MailSink::start();
    let app = sink.configure(TestApp::builder()).env("UI__ENABLED", "false").spawn().await;
    let (email, _) = app.user().await;
    assert_eq!(app.post_json("/auth/password/forgot", &serde_json::json!({ "email": email })).await.status, 202);
    let mail = sink.wait_for(&email, "Reset your password", crate::mail_sink::MAIL_TIMEOUT).await;
    assert!(mail.body.contains(&format!("http://localhost/reset-password#token={}", mail.token())), "{}", mail.body);
    for path in ["/ui/", "/ui/login", "/ui/account", "/ui/assets/ui.css"] {
        app.get(path).await.assert_problem(404);
    }
    let r = TestApp::send(
        app.request(Method::POST, "/ui/login").header("content-type", "application/x-www-form-urlencoded").body("a=b"),
    )
    .await;
    r.assert_problem(404);
}

/// An account with a second factor: the page hands over to `/ui/mfa` with the challenge in an
/// HttpOnly cookie, never in the URL; the code completes the sign-in through the same flow.
#[tokio::test]
async fn the_second_factor_step_keeps_the_challenge_out_of_the_url() {
    let app = TestApp::spawn().await;
    let u = crate::mfa::mfa_user(&app).await;
    let mut v = Visitor::new(&app);
    let token = v.form_token("/ui/login").await;
    let r = v.post("/ui/login", &[("csrf_token", &token), ("email", &u.email), ("password", STRONG_PASSWORD)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/mfa")), "{}", r.text());
    let mfa = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("__Host-rampart_mfa="))
        .unwrap();
    assert!(mfa.contains("HttpOnly") && mfa.contains("Secure") && mfa.contains("SameSite=Strict"), "{mfa}");
    assert!(v.session().is_none());
    let token = v.form_token("/ui/mfa").await;
    let r = v.post("/ui/mfa", &[("csrf_token", &token), ("code", "000000")]).await;
    assert_page(&r, 401);
    assert!(r.text().contains("Invalid code"), "{}", r.text());
    let r = v.post("/ui/mfa", &[("csrf_token", &token), ("code", &u.next_code())]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/account")), "{}", r.text());
    assert!(v.session().is_some());
    assert!(!v.cookies.contains_key("__Host-rampart_mfa"), "the challenge cookie is cleared");
    // Without a pending sign-in the code page sends back to the password.
    let mut fresh = Visitor::new(&app);
    let r = fresh.get("/ui/mfa").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/login")));
}
