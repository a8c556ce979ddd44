//! Prometheus metrics: on their own listener only, with bounded labels, counting what an operator
//! watches (requests by route and status, security events, rate-limit refusals).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// The value of the sample whose line starts with `series` (name and labels), or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_security_events() {
    // Three login attempts a minute: the registration, the user's own login, one wrong password,
    // then 429.
    let app = TestApp::builder().env("RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE", "3").spawn().await;
    let (email, s) = app.user().await;
    // Two records: two concrete paths, one route template.
    for _ in 0..2 {
        app.get_as(&format!("/api/orders/{}", uuid::Uuid::new_v4()), &s).await.assert_problem(404);
    }
    app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(401);
    app.login(&email, OTHER_STRONG_PASSWORD).await.0.assert_problem(429);

    let text = app.metrics().await;
    let by_route =
        sample(&text, "rampart_http_requests_total{method=\"GET\",route=\"/api/{resource}/{id}\",status=\"404\"}");
    assert_eq!(by_route, 2.0, "{text}");
    // The second request reused the first one's handles: its latency was recorded too.
    let timed =
        sample(&text, "rampart_http_request_duration_seconds_count{method=\"GET\",route=\"/api/{resource}/{id}\"}");
    assert_eq!(timed, 2.0, "{text}");
    assert!(sample(&text, "rampart_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"200\"}") >= 1.0);
    assert!(text.contains("rampart_http_request_duration_seconds_bucket"), "a histogram, not a summary: {text}");
    assert_eq!(sample(&text, "rampart_audit_events_total{action=\"login_failure\",outcome=\"failure\"}"), 1.0);
    assert_eq!(sample(&text, "rampart_rate_limited_total{policy=\"login-ip\"}"), 1.0);
    // No label carries a user's data: no email, no concrete record path, no address.
    assert!(!text.contains(&email) && !text.contains("127.0.0.1"), "{text}");
    assert!(!text.lines().any(|l| l.contains("route=\"/api/orders/")), "a concrete path became a label");
    // Access-log lines lost to a stalled stdout are counted; a server whose stdout keeps up
    // loses none, and the series is there to alert on.
    assert!(text.lines().any(|l| l == "rampart_log_lines_dropped_total 0"), "{text}");
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener() {
    let app = TestApp::spawn().await;
    app.get("/metrics").await.assert_problem(404);
    let (_, s) = app.user().await;
    app.get_as("/metrics", &s).await.assert_problem(404);
    let r = TestApp::send(app.request(Method::POST, "/metrics").json(&json!({}))).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
}
