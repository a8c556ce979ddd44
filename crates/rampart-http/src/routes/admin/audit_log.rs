//! `GET /admin/audit`: the audit log, newest first.

use axum::Json;
use axum::extract::State;
use http::Uri;
use rampart_core::clock::rfc3339;
use rampart_store::{AuditEvent, AuditFilter, AuditRow};
use serde::Serialize;

use super::page::{self, Page, invalid, is_uuid};
use crate::extract::{Admin, RequireRole};
use crate::{ApiError, AppState};

#[derive(Serialize)]
pub struct AuditView {
    id: String,
    at: String,
    action: String,
    actor_id: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
    outcome: String,
    /// How many occurrences the event stands for: 1, except for repeated `authz_denied` of one
    /// actor on one target within `limits.denial_audit_window`, written as one event (with the
    /// last one's `at`, `ip` and `request_id`).
    count: i64,
    /// How a login was made, on `login_success` events: `password`, `password+totp`,
    /// `password+recovery_code`, `password+passkey` or `passkey`; `null` on every other event
    /// and on logins recorded before the method was.
    method: Option<String>,
}

impl From<&AuditRow> for AuditView {
    fn from(r: &AuditRow) -> Self {
        Self {
            id: r.id.clone(),
            at: rfc3339(r.at),
            action: r.action.clone(),
            actor_id: r.actor_id.clone(),
            target: r.target.clone(),
            ip: r.ip.clone(),
            request_id: r.request_id.clone(),
            outcome: r.outcome.clone(),
            count: r.count,
            method: r.method.clone(),
        }
    }
}

const CURSOR_LIST: &str = "audit";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    uri: Uri,
) -> Result<Json<Page<AuditView>>, ApiError> {
    let q = page::params(&uri, &["limit", "cursor", "actor", "action"])?;
    let limit = page::limit(q.get("limit"))?;
    let before = match q.get("cursor") {
        Some(c) => Some(
            page::decode_cursor(&state.cursors, CURSOR_LIST, c)?
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out"))?,
        ),
        None => None,
    };
    let actor = q.get("actor").map(String::as_str);
    if actor.is_some_and(|a| !is_uuid(a)) {
        return Err(invalid("actor", "must be a user id (UUID)"));
    }
    let action = q.get("action").map(String::as_str);
    // Every action name docs/api.md defines, written yet or not: filtering on one that has no
    // events is an empty page, a name outside the list is a typo (400).
    if action.is_some_and(|a| AuditEvent::from_name(a).is_none()) {
        return Err(invalid("action", "is not an audit action name"));
    }
    let filter = AuditFilter { before, actor, action, ..AuditFilter::default() };
    let rows = state.store.audit_page(&filter, limit + 1).await?;
    Ok(Json(Page::from_rows(
        rows,
        limit,
        |r| AuditView::from(r),
        |r| page::encode_cursor(&state.cursors, CURSOR_LIST, &r.seq.to_string()),
    )))
}
