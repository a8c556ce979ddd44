//! How a page receives a form: the only two ways a `/ui` handler reads a body.
//!
//! - [`SignedInForm`]: the visitor's live cookie session, and the form's `csrf_token` equal to
//!   that session's CSRF token, compared exactly as `X-CSRF-Token` is on the JSON API
//!   (`middleware::csrf_matches`: the same derivation, constant-time).
//! - [`PreSessionForm`]: before sign-in, the `csrf_token` must be the one bound to the browser's
//!   pre-session cookie (see `presession`), which stops login CSRF.
//!
//! The `guard` layer has already refused a foreign `Origin`, `Sec-Fetch-Site: cross-site` and an
//! over-long declared body, exactly as for the API; it leaves the CSRF check of `/ui` to these
//! extractors because a form carries its token in the body, which the layer does not read.
//!
//! In order, each refusal before any work the next costs: content type
//! (`application/x-www-form-urlencoded`, else 415), body size (`limits.max_body_bytes`, else
//! 413), the session (else a 303 to `/ui/login`), exactly one `csrf_token` that matches (else a
//! 403 page, nothing done), then the fields into `T`. A field the form does not have, a repeated
//! one or a missing one is a 400 page: forms are typed like JSON bodies (`deny_unknown_fields`),
//! so a field the page does not know can never be silently dropped.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use maud::{Markup, html};
use serde::de::DeserializeOwned;

use super::presession::{self, PreSession};
use super::session::SignedIn;
use crate::error::FieldError;
use crate::middleware::csrf_matches;
use crate::{ApiError, AppState};

/// The refusal of a form whose token is missing or wrong: the same 403 for every reason.
pub(super) const REFUSED: ApiError =
    ApiError::Forbidden("this form has expired or was not sent from this site: reload the page and try again");

/// The hidden field every form carries.
pub fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// A form posted by a signed-in visitor, its CSRF token checked.
pub struct SignedInForm<T> {
    pub signed_in: SignedIn,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignedInForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        check_content_type(&parts.headers).map_err(IntoResponse::into_response)?;
        let signed_in = SignedIn::from_request_parts(&mut parts, state).await?;
        let pairs = read_pairs(body, state).await.map_err(IntoResponse::into_response)?;
        let (sent, rest) = take_csrf(pairs).ok_or_else(|| REFUSED.into_response())?;
        if !csrf_matches(signed_in.cookie(), &sent) {
            return Err(REFUSED.into_response());
        }
        let form = decode(rest).map_err(IntoResponse::into_response)?;
        Ok(Self { signed_in, form })
    }
}

/// A form posted before sign-in, its token checked against the pre-session cookie.
pub struct PreSessionForm<T> {
    pub form: T,
    /// The same pre-session, to show the form again with its errors.
    pub pre: PreSession,
}

impl<T: DeserializeOwned> FromRequest<AppState> for PreSessionForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        check_content_type(&parts.headers).map_err(IntoResponse::into_response)?;
        let pairs = read_pairs(body, state).await.map_err(IntoResponse::into_response)?;
        let (sent, rest) = take_csrf(pairs).ok_or_else(|| REFUSED.into_response())?;
        if !presession::verify(state, &parts.headers, &sent) {
            return Err(REFUSED.into_response());
        }
        let form = decode(rest).map_err(IntoResponse::into_response)?;
        Ok(Self { form, pre: PreSession::verified(sent) })
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if form { Ok(()) } else { Err(ApiError::UnsupportedMediaType) }
}

async fn read_pairs(body: axum::body::Body, state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let bytes = crate::extract::read_body(body, state.settings.limits.max_body_bytes).await?;
    serde_urlencoded::from_bytes(&bytes).map_err(|_| ApiError::BadRequest("the form could not be read".into()))
}

/// The one `csrf_token` and the other fields; `None` when there is none or more than one.
fn take_csrf(pairs: Vec<(String, String)>) -> Option<(String, Vec<(String, String)>)> {
    let (tokens, rest): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == "csrf_token");
    match <[_; 1]>::try_from(tokens) {
        Ok([(_, token)]) => Some((token, rest)),
        Err(_) => None,
    }
}

/// The remaining fields into `T`, as strictly as a JSON body: re-encoded and read by serde, so
/// that `deny_unknown_fields` and duplicate detection apply.
fn decode<T: DeserializeOwned>(rest: Vec<(String, String)>) -> Result<T, ApiError> {
    let encoded =
        serde_urlencoded::to_string(&rest).map_err(|_| ApiError::BadRequest("the form could not be read".into()))?;
    serde_urlencoded::from_str(&encoded)
        .map_err(|_| ApiError::BadRequest("the form has a missing, repeated or unknown field".into()))
}

/// What went wrong with a form, to show in the page: messages about the whole form, and messages
/// about one field (shown next to it and tied to it with `aria-describedby`). Every one of them
/// is also listed in the summary at the top.
#[derive(Debug, Default)]
pub struct FormErrors(Vec<FieldError>);

/// The `field` of a message about the whole form.
const WHOLE_FORM: &str = "";

impl FormErrors {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn whole_form(message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(WHOLE_FORM, message)])
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    pub fn from_fields(errors: Vec<FieldError>) -> Self {
        Self(errors)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message about `field`, if any.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    /// The first message about `field` or any of its parts (`scopes[0].resource`).
    pub fn first_under(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field || e.field.strip_prefix(field).is_some_and(|rest| rest.starts_with(['[', '.'])))
            .map(|e| e.message.as_str())
    }

    /// The summary at the top of the form: every error, field errors linking to their input.
    /// The script focuses it when the page loads, so a screen reader reads it first.
    pub fn summary(&self) -> Markup {
        html! {
            @if !self.0.is_empty() {
                div class="error-summary" role="alert" tabindex="-1" aria-labelledby="error-summary-title" {
                    h2 id="error-summary-title" { "There is a problem" }
                    ul {
                        @for e in &self.0 {
                            li {
                                @if e.field.is_empty() {
                                    (e.message)
                                } @else {
                                    a href={ "#" (input_id(&e.field)) } { (label_of(&e.field)) ": " (e.message) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A field's name as the summary shows it (`new_password` → "New password").
fn label_of(field: &str) -> String {
    let spaced = field.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The `id` of the input of `field`.
pub fn input_id(field: &str) -> String {
    format!("f-{field}")
}

/// One labelled input, with its hint and its error. `autocomplete` and `inputmode` follow the
/// contract so that password managers and outside tests find the fields.
pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub autocomplete: Option<&'a str>,
    pub value: Option<&'a str>,
    pub hint: Option<&'a str>,
    pub inputmode: Option<&'a str>,
    pub required: bool,
}

impl<'a> Input<'a> {
    pub fn new(name: &'a str, label: &'a str, kind: &'a str) -> Self {
        Self { name, label, kind, autocomplete: None, value: None, hint: None, inputmode: None, required: true }
    }
    pub fn autocomplete(mut self, token: &'a str) -> Self {
        self.autocomplete = Some(token);
        self
    }
    pub fn value(mut self, value: Option<&'a str>) -> Self {
        self.value = value;
        self
    }
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }
    pub fn numeric(mut self) -> Self {
        self.inputmode = Some("numeric");
        self
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    pub fn render(&self, errors: &FormErrors) -> Markup {
        let id = input_id(self.name);
        let hint_id = self.hint.map(|_| format!("{id}-hint"));
        let error = errors.for_field(self.name);
        let error_id = error.map(|_| format!("{id}-error"));
        let described: Vec<&str> = [hint_id.as_deref(), error_id.as_deref()].into_iter().flatten().collect();
        let described = (!described.is_empty()).then(|| described.join(" "));
        html! {
            div class="field" {
                label for=(id) { (self.label) }
                @if let (Some(hint), Some(hint_id)) = (self.hint, &hint_id) {
                    p class="hint" id=(hint_id) { (hint) }
                }
                @if let (Some(message), Some(error_id)) = (error, &error_id) {
                    p class="field-error" id=(error_id) { (message) }
                }
                input id=(id) name=(self.name) type=(self.kind) value=[self.value]
                    autocomplete=[self.autocomplete] inputmode=[self.inputmode]
                    required[self.required] aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[described];
            }
        }
    }
}

/// A refused form, ready to be shown: the status and headers the JSON API would have answered
/// with (`Retry-After` on 423 and 429, the `RateLimit` headers), and the messages. A 5xx is not
/// a form error: it stays the error response, which the problem layer turns into a page.
pub enum Failure {
    Show { status: StatusCode, headers: HeaderMap, errors: FormErrors },
    Page(Response),
}

impl Failure {
    /// What the API would answer for `error`, read back from its problem document, so that the
    /// status, the headers and the words are decided in one place (`error.rs`) for both.
    pub async fn of(error: impl Into<ApiError>) -> Self {
        let res = error.into().into_response();
        if res.status().is_server_error() {
            return Self::Page(res);
        }
        let (parts, body) = res.into_parts();
        let mut headers = HeaderMap::new();
        for name in [header::RETRY_AFTER, crate::error::RATELIMIT_POLICY, crate::error::RATELIMIT] {
            if let Some(v) = parts.headers.get(&name) {
                headers.insert(name, v.clone());
            }
        }
        let problem = super::problem_page::read_problem(body).await;
        let errors = match problem.errors {
            fields if !fields.is_empty() => FormErrors::from_fields(fields),
            _ => FormErrors::whole_form(super::problem_page::sentence(&problem.detail)),
        };
        Self::Show { status: parts.status, headers, errors }
    }

    /// The form page again: `render` gets the errors and returns the page answered with the
    /// failure's status and headers.
    pub fn respond(self, render: impl FnOnce(StatusCode, &FormErrors) -> Response) -> Response {
        match self {
            Self::Page(res) => res,
            Self::Show { status, headers, errors } => {
                let mut res = render(status, &errors);
                res.headers_mut().extend(headers);
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn exactly_one_csrf_token_is_taken() {
        let (t, rest) = take_csrf(pairs(&[("email", "a"), ("csrf_token", "t")])).unwrap();
        assert_eq!((t.as_str(), rest.len()), ("t", 1));
        assert!(take_csrf(pairs(&[("email", "a")])).is_none());
        assert!(take_csrf(pairs(&[("csrf_token", "t"), ("csrf_token", "u")])).is_none());
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct F {
        #[allow(dead_code)]
        email: String,
    }

    #[test]
    fn fields_are_typed_strictly() {
        assert!(decode::<F>(pairs(&[("email", "a@b.c")])).is_ok());
        assert!(decode::<F>(pairs(&[("email", "a"), ("admin", "1")])).is_err());
        assert!(decode::<F>(pairs(&[("email", "a"), ("email", "b")])).is_err());
        assert!(decode::<F>(pairs(&[])).is_err());
    }

    #[test]
    fn inputs_are_labelled_and_tied_to_their_error() {
        let errors = FormErrors::field("email", "is not an email address");
        let html = Input::new("email", "Email", "email").autocomplete("username").render(&errors).into_string();
        assert!(html.contains(r#"<label for="f-email">"#), "{html}");
        assert!(html.contains(r#"aria-describedby="f-email-error""#), "{html}");
        assert!(html.contains(r#"id="f-email-error""#), "{html}");
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        let summary = errors.summary().into_string();
        assert!(summary.contains(r##"href="#f-email""##), "{summary}");
    }

    #[test]
    fn values_are_escaped() {
        let html = Input::new("email", "Email", "email")
            .value(Some(r#""><script>alert(1)</script>"#))
            .render(&FormErrors::none())
            .into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
    }
}
