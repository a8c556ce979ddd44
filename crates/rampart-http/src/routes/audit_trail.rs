//! Writing audit events from handlers.

use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome, NewAuditEvent, SignInMethod};

use crate::AppState;
use crate::extract::RequestContext;

pub struct Audit<'a> {
    pub action: AuditEvent,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub outcome: AuditOutcome,
}

/// Appends an event. A failed write is logged loudly but does not fail the user's request: the
/// action it records has already happened, and refusing the response would not undo it.
pub async fn record(state: &AppState, ctx: &RequestContext, event: Audit<'_>) {
    append(state, ctx, event, None).await;
}

/// Appends a login's event (`login_success`) with how the login was made.
pub async fn record_sign_in(state: &AppState, ctx: &RequestContext, event: Audit<'_>, method: SignInMethod) {
    append(state, ctx, event, Some(method)).await;
}

async fn append(state: &AppState, ctx: &RequestContext, event: Audit<'_>, method: Option<SignInMethod>) {
    // Every security event is also a counter (action and outcome only: both from fixed sets).
    metrics::counter!("rampart_audit_events_total", "action" => event.action.as_str(), "outcome" => event.outcome.as_str())
        .increment(1);
    let ip = ctx.ip.to_string();
    let row = NewAuditEvent {
        action: event.action,
        actor_id: event.actor_id,
        target: event.target,
        ip: Some(&ip),
        request_id: Some(&ctx.request_id),
        user_agent: ctx.user_agent.as_deref(),
        outcome: event.outcome,
        now: now_ms(),
    };
    let written = match method {
        Some(m) => state.store.append_sign_in(&row, m).await,
        None => state.store.append_audit(&row).await,
    };
    if let Err(e) = written {
        tracing::error!(action = event.action.as_str(), error = %e, "audit write failed");
    }
}
