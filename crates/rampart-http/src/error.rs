//! One error type at the edge, mapped to RFC 9457 problem+json in this one place.
//!
//! Internal causes never reach a body: they ride in the response as a [`ServerFault`] extension
//! and are logged once by the `context` layer, with the request id; a 5xx body is rewritten by
//! the problem middleware to `title`, `status` and `request_id` only.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://rampart.dev/problems/";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A rate limit refused the request, before any hashing or database work.
    #[error("rate limited: {}", .0.policy.name())]
    RateLimited(rampart_shared::limit::Refusal),
    /// The password was right and the account has a second factor: finish with
    /// `POST /auth/mfa/verify` and this token.
    #[error("second factor required")]
    MfaRequired(secrecy::SecretString),
    /// The password was right but the address is not verified yet (verification required).
    #[error("email not verified")]
    EmailNotVerified,
    /// A mailed token (reset, verification) that is unknown, spent or expired.
    #[error("invalid token")]
    InvalidToken,
    /// Too many failed logins: the account is locked for this many more seconds.
    #[error("account locked")]
    Locked(u64),
    /// Hashing capacity or the database is saturated: retry shortly.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A real fault. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal with its own problem type: (status, type slug, detail).
    #[error("{2}")]
    Typed(StatusCode, &'static str, &'static str),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

/// A problem+json response. Used by handlers' errors and by the fallback middleware.
pub fn problem(status: StatusCode, slug: &str, detail: String, errors: Option<&[FieldError]>) -> Response {
    let body = Problem {
        kind: format!("{TYPE_BASE}{slug}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Validation(errors) => {
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    _ => "the request has invalid fields".into(),
                };
                problem(StatusCode::BAD_REQUEST, "validation", detail, Some(&errors))
            }
            ApiError::BadRequest(detail) => problem(StatusCode::BAD_REQUEST, "bad-request", detail, None),
            ApiError::Unauthorized(detail) => {
                let mut res = problem(StatusCode::UNAUTHORIZED, "unauthorized", detail.into(), None);
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"rampart\""));
                res
            }
            ApiError::Forbidden(detail) => problem(StatusCode::FORBIDDEN, "forbidden", detail.into(), None),
            ApiError::NotFound => problem(StatusCode::NOT_FOUND, "not-found", "no such resource".into(), None),
            ApiError::Conflict(detail) => problem(StatusCode::CONFLICT, "conflict", detail.into(), None),
            ApiError::PayloadTooLarge(limit) => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the body exceeds {limit} bytes"),
                None,
            ),
            ApiError::UnsupportedMediaType => problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the body must be Content-Type: application/json".into(),
                None,
            ),
            ApiError::RateLimited(refusal) => rate_limited(&refusal),
            ApiError::MfaRequired(token) => mfa_required(&token),
            ApiError::EmailNotVerified => problem(
                StatusCode::FORBIDDEN,
                "email-not-verified",
                "this email address is not verified yet: follow the link we mailed (a new one is sent at most every ten minutes)".into(),
                None,
            ),
            ApiError::InvalidToken => problem(
                StatusCode::BAD_REQUEST,
                "invalid-token",
                "the token is invalid, expired or already used".into(),
                None,
            ),
            ApiError::Locked(retry_after) => {
                let detail = "too many failed logins: this account is locked for now; try again later".into();
                let mut res = problem(StatusCode::LOCKED, "account-locked", detail, None);
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                res
            }
            ApiError::Unavailable(cause) => {
                let mut res = problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", String::new(), None);
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res.extensions_mut().insert(ServerFault { internal: false, cause });
                res
            }
            ApiError::Typed(status, slug, detail) => problem(status, slug, detail.into(), None),
            ApiError::Internal(cause) => {
                let mut res = problem(StatusCode::INTERNAL_SERVER_ERROR, "internal", String::new(), None);
                res.extensions_mut().insert(ServerFault { internal: true, cause });
                res
            }
        }
    }
}

/// The cause of a 5xx, riding in the response's extensions to the `context` layer, which logs it
/// once with the request id (and the problem layer keeps it when it rewrites the body). Turning
/// an error into a response has no side effect of its own.
#[derive(Debug, Clone)]
pub struct ServerFault {
    /// A real fault (500), or a saturation that a retry may get past (503).
    pub internal: bool,
    pub cause: String,
}

/// 401 `mfa-required`: the problem document carries the `mfa_token` the client sends back with a
/// code. Only a client that just proved the password gets one.
fn mfa_required(token: &secrecy::SecretString) -> Response {
    let body = serde_json::json!({
        "type": format!("{TYPE_BASE}mfa-required"),
        "title": "Unauthorized",
        "status": 401,
        "detail": "a second factor is required: send this mfa_token and a code to POST /auth/mfa/verify",
        "mfa_token": secrecy::ExposeSecret::expose_secret(token),
    });
    let mut res = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"rampart\""));
    res
}

/// 429 with `Retry-After` and the IETF headers (draft-ietf-httpapi-ratelimit-headers, structured
/// fields): `RateLimit-Policy: "login-ip";q=10;w=60` names the budget that ran out, its quota
/// and window in seconds; `RateLimit: "login-ip";r=0;t=6` says nothing is left and when the next
/// request can succeed.
///
/// Written out directly rather than through [`problem`]'s serde document and `format!`: a 429 is
/// the answer a flood gets, so it should cost little more than the request it refuses (issue 17;
/// it was about a fifth of a refused login's instructions). Nothing in it comes from the client:
/// fixed text, a policy name and three integers, so there is nothing to escape. Unit test
/// `the_refusal_is_the_problem_document` holds the body to what [`problem`] writes.
fn rate_limited(refusal: &rampart_shared::limit::Refusal) -> Response {
    refusals_counter(refusal.policy).increment(1);
    let name = refusal.policy.name();
    let retry_secs = refusal.retry_after_secs();
    // Integers by `itoa`, strings pushed: `write!` went through the formatting machinery three
    // times, about a thousand instructions a refusal (callgrind).
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    let retry = a.format(retry_secs);
    let mut body = String::with_capacity(RATE_LIMITED_BODY.len() + 24);
    for piece in [RATE_LIMITED_BODY, retry, " s\"}"] {
        body.push_str(piece);
    }
    let mut policy = String::with_capacity(40);
    for piece in ["\"", name, "\";q=", b.format(refusal.quota.count), ";w="] {
        policy.push_str(piece);
    }
    policy.push_str(b.format(refusal.quota.window.as_secs()));
    let mut remaining = String::with_capacity(32);
    for piece in ["\"", name, "\";r=0;t=", retry] {
        remaining.push_str(piece);
    }
    let mut res = Response::new(axum::body::Body::from(body));
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = res.headers_mut();
    h.reserve(14);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_secs));
    // Made of a policy name and integers, so always a valid value; checked all the same.
    if let Ok(v) = HeaderValue::try_from(policy) {
        h.insert(RATELIMIT_POLICY, v);
    }
    if let Ok(v) = HeaderValue::try_from(remaining) {
        h.insert(RATELIMIT, v);
    }
    res
}

/// The 429 body up to the number of seconds in its `detail`.
const RATE_LIMITED_BODY: &str = concat!(
    r#"{"type":"https://rampart.dev/problems/rate-limited","title":"Too Many Requests","status":429,"#,
    r#""detail":"too many requests: retry in "#
);

/// `rampart_rate_limited_total` for `policy`, registered with the recorder once (a labelled
/// `counter!` is built and looked up in the recorder's registry on every call).
fn refusals_counter(policy: rampart_shared::limit::Policy) -> &'static metrics::Counter {
    use rampart_shared::limit::Policy;
    use std::sync::LazyLock;
    fn of(policy: Policy) -> metrics::Counter {
        metrics::counter!("rampart_rate_limited_total", "policy" => policy.name())
    }
    static LOGIN_IP: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::LoginIp));
    static LOGIN_ACCOUNT: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::LoginAccount));
    static LOGIN_GLOBAL: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::LoginGlobal));
    static API_IP: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::ApiIp));
    static API_USER: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::ApiUser));
    static API_KEY: LazyLock<metrics::Counter> = LazyLock::new(|| of(Policy::ApiKey));
    match policy {
        Policy::LoginIp => &LOGIN_IP,
        Policy::LoginAccount => &LOGIN_ACCOUNT,
        Policy::LoginGlobal => &LOGIN_GLOBAL,
        Policy::ApiIp => &API_IP,
        Policy::ApiUser => &API_USER,
        Policy::ApiKey => &API_KEY,
    }
}

pub const RATELIMIT_POLICY: header::HeaderName = header::HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: header::HeaderName = header::HeaderName::from_static("ratelimit");

impl From<rampart_store::StoreError> for ApiError {
    fn from(e: rampart_store::StoreError) -> Self {
        use rampart_store::StoreError as S;
        match e {
            S::Conflict => ApiError::Conflict("conflicts with an existing record"),
            S::Unavailable(cause) => ApiError::Unavailable(cause.to_string()),
            S::Other(cause) => ApiError::Internal(cause.to_string()),
        }
    }
}

impl From<rampart_core::auth::hasher::HashError> for ApiError {
    fn from(e: rampart_core::auth::hasher::HashError) -> Self {
        use rampart_core::auth::hasher::HashError as H;
        match e {
            H::Busy => ApiError::Unavailable("password hashing queue is full".into()),
            H::Failed(cause) => ApiError::Internal(cause.to_string()),
        }
    }
}

/// The flows' outcomes as HTTP: the one place where it is decided which of them share an answer.
impl From<crate::flows::AuthError> for ApiError {
    fn from(e: crate::flows::AuthError) -> Self {
        use crate::flows::AuthError as A;
        match e {
            // An unknown email and a wrong password: same status, same bytes.
            A::InvalidCredentials => ApiError::Unauthorized("invalid email or password"),
            A::Locked { retry_after_secs } => ApiError::Locked(retry_after_secs),
            A::RateLimited(refusal) => ApiError::RateLimited(refusal),
            A::EmailNotVerified => ApiError::EmailNotVerified,
            A::MfaRequired(token) => ApiError::MfaRequired(token),
            A::InvalidChallenge => ApiError::Unauthorized("invalid or expired mfa_token"),
            A::InvalidCode => ApiError::Unauthorized("invalid code"),
            A::PasskeyChallenge => ApiError::Typed(
                StatusCode::BAD_REQUEST,
                "invalid-passkey-challenge",
                "the challenge_id is unknown, expired, already used or of another ceremony: start again",
            ),
            A::PasskeyRefused => {
                ApiError::Typed(StatusCode::UNAUTHORIZED, "passkey-refused", "the passkey could not be verified")
            }
            A::PasskeyTaken => {
                ApiError::Typed(StatusCode::CONFLICT, "passkey-taken", "this passkey is registered already")
            }
            A::PasskeyRequired => ApiError::Typed(
                StatusCode::FORBIDDEN,
                "passkey-required",
                "this account must sign in with a passkey (or a recovery code): a password or authenticator code is not enough",
            ),
            A::NoPasskey => {
                ApiError::Typed(StatusCode::CONFLICT, "no-passkey", "this account has no passkey: answer with a code")
            }
            A::PasskeyNotFound => ApiError::NotFound,
            A::LastRequiredPasskey => {
                ApiError::Conflict("this is your last passkey and your role requires one: add another first")
            }
            A::ReauthRequired => ApiError::Typed(
                StatusCode::FORBIDDEN,
                "reauthentication-required",
                "adding or removing a passkey needs a recent sign-in: sign in again, then retry",
            ),
            A::InvalidRefreshToken => ApiError::Unauthorized("invalid or expired refresh token"),
            A::InvalidMailedToken => ApiError::InvalidToken,
            A::EmailTaken => ApiError::Conflict("an account with this email already exists"),
            A::MfaAlreadyEnabled => ApiError::Conflict(
                "two-factor authentication is already enabled: disable it before setting it up again",
            ),
            A::MfaNotEnabled => ApiError::Conflict("two-factor authentication is not enabled"),
            A::NoMfaSetup => ApiError::Conflict("no TOTP setup in progress: call POST /auth/mfa/totp/setup first"),
            A::WrongPassword => ApiError::Forbidden("the password is not correct"),
            A::WrongPasswordOrCode => ApiError::Forbidden("the password or code is not correct"),
            A::WrongCurrentPassword => ApiError::Forbidden("the current password is not correct"),
            A::PasswordChangedMeanwhile => ApiError::Conflict("the password was changed by another request meanwhile"),
            A::Invalid(errors) => ApiError::Validation(errors),
            A::Hash(e) => e.into(),
            A::Store(e) => e.into(),
            A::Unavailable(cause) => ApiError::Unavailable(cause),
            A::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt as _;
    use rampart_shared::limit::{Policy, Quota, Refusal};

    use super::*;

    async fn body_of(res: Response) -> Vec<u8> {
        res.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    /// The 429 written out by hand is byte for byte the problem document the general builder
    /// writes, with the headers the contract names.
    #[tokio::test]
    async fn the_refusal_is_the_problem_document() {
        let quota = Quota { count: 10, window: Duration::from_secs(60) };
        for (policy, retry_after, secs) in [
            (Policy::LoginIp, Duration::from_millis(5_200), 6),
            (Policy::ApiKey, Duration::from_secs(3_600), 3_600),
            (Policy::LoginGlobal, Duration::ZERO, 1),
        ] {
            let res = rate_limited(&Refusal { policy, quota, retry_after });
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
            let h = res.headers().clone();
            assert_eq!(h[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(h[header::RETRY_AFTER], secs.to_string().as_str());
            assert_eq!(h[RATELIMIT_POLICY], format!("\"{}\";q=10;w=60", policy.name()).as_str());
            assert_eq!(h[RATELIMIT], format!("\"{}\";r=0;t={secs}", policy.name()).as_str());
            let general = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many requests: retry in {secs} s"),
                None,
            );
            let body = body_of(res).await;
            assert_eq!(String::from_utf8(body).unwrap(), String::from_utf8(body_of(general).await).unwrap());
        }
    }
}
