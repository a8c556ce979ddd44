//! `/ui/admin/audit`: the audit log, newest first, filtered by actor (a user id or an email),
//! action and time range, a page at a time; each event with its IP, user agent and request id,
//! and a login with how it was made (password, with which second factor, or a passkey).
//!
//! The filters are a GET form: a filtered view is a link an admin can share. Every value is
//! checked as the JSON API checks it (an unknown action or a malformed cursor is a 400 page, not
//! an empty list) and is echoed back into the form escaped; the user agent is client-chosen text.

use axum::extract::State;
use axum::response::Response;
use http::Uri;
use maud::html;
use rampart_core::clock::{parse_instant, rfc3339};
use rampart_core::email::Email;
use rampart_store::{AuditEvent, AuditFilter};

use super::{AdminVisitor, query, respond};
use crate::routes::admin::page::{self, invalid, is_uuid};
use crate::{ApiError, AppState};

const PAGE: u32 = 50;

/// `GET /ui/admin/audit?actor=&action=&since=&until=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    AdminVisitor(admin): AdminVisitor,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q = page::params(&uri, &["actor", "action", "since", "until", "cursor"])?;
    let text = |name: &str| q.get(name).map(|v| v.trim()).unwrap_or_default();
    let (actor_text, action_text, since_text, until_text) =
        (text("actor"), text("action"), text("since"), text("until"));

    // An actor is a user id, or the email of an existing user (an unknown email matches nothing).
    let actor_id = match actor_text {
        "" => None,
        a if is_uuid(a) => Some(a.to_owned()),
        a => {
            let email = Email::parse(a).map_err(|_| invalid("actor", "must be a user id or an email address"))?;
            Some(state.store.user_by_email(email.normalized()).await?.map_or_else(|| "-".to_owned(), |u| u.id))
        }
    };
    let action = match action_text {
        "" => None,
        a => Some(AuditEvent::from_name(a).ok_or_else(|| invalid("action", "is not an audit action name"))?),
    };
    let instant = |field: &str, t: &str| {
        (!t.is_empty())
            .then(|| {
                parse_instant(t).ok_or_else(|| invalid(field, "must be a date and time like 2026-12-06T04:30 (UTC)"))
            })
            .transpose()
    };
    let since = instant("since", since_text)?;
    let until = instant("until", until_text)?;
    let before = match q.get("cursor") {
        Some(c) => Some(
            page::decode_cursor(&state.cursors, "audit", c)?
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out"))?,
        ),
        None => None,
    };
    let filter =
        AuditFilter { before, actor: actor_id.as_deref(), action: action.map(AuditEvent::as_str), since, until };
    let mut rows = state.store.audit_page(&filter, PAGE + 1).await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let next = rows.last().filter(|_| more).map(|r| {
        let c = page::encode_cursor(&state.cursors, "audit", &r.seq.to_string());
        let pairs = [
            ("actor", actor_text),
            ("action", action_text),
            ("since", since_text),
            ("until", until_text),
            ("cursor", c.as_str()),
        ];
        format!("/ui/admin/audit{}", query(&pairs))
    });
    let content = html! {
        h1 { "Audit log" }
        form method="get" action="/ui/admin/audit" class="filters" {
            div class="field" {
                label for="f-actor" { "Actor (user id or email)" }
                input id="f-actor" name="actor" type="text" value=(actor_text) autocomplete="off";
            }
            div class="field" {
                label for="f-action" { "Action" }
                select id="f-action" name="action" {
                    option value="" selected[action.is_none()] { "Any" }
                    @for e in AuditEvent::ALL {
                        option value=(e.as_str()) selected[action == Some(*e)] { (e.as_str()) }
                    }
                }
            }
            div class="field" {
                label for="f-since" { "From (UTC)" }
                input id="f-since" name="since" type="datetime-local" value=(since_text);
            }
            div class="field" {
                label for="f-until" { "Until (UTC)" }
                input id="f-until" name="until" type="datetime-local" value=(until_text);
            }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p class="muted" { "No event matches." }
        } @else {
            div class="table-wrap" {
                table class="audit" {
                    caption class="visually-hidden" { "Audit events, newest first" }
                    thead { tr {
                        th scope="col" { "Time (UTC)" } th scope="col" { "Action" } th scope="col" { "Outcome" }
                        th scope="col" { "Actor" } th scope="col" { "Target" } th scope="col" { "IP" }
                        th scope="col" { "User agent" } th scope="col" { "Request id" }
                    } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td { (rfc3339(r.at)) }
                                td {
                                    (r.action) @if r.count > 1 { " ×" (r.count) }
                                    @if let Some(m) = &r.method { " (" (m) ")" }
                                }
                                td { (r.outcome) }
                                td { @if let Some(a) = &r.actor_id { a href={ "/ui/admin/users/" (a) } { code { (a) } } } }
                                td { @if let Some(t) = &r.target { code { (t) } } }
                                td { @if let Some(ip) = &r.ip { (ip) } }
                                td class="user-agent" { @if let Some(ua) = &r.user_agent { (ua) } }
                                td { @if let Some(id) = &r.request_id { code { (id) } } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a class="button secondary" href=(next) { "Older events" } }
        }
    };
    Ok(respond(&state, &admin, "Audit log", "/ui/admin/audit", content))
}
