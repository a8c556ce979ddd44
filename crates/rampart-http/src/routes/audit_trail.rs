//! Writing audit events from handlers.

use rampart_core::clock::now_ms;
use rampart_store::{AuditEvent, AuditOutcome, NewAuditEvent};

use crate::AppState;
use crate::extract::RequestContext;

pub struct Audit<'a> {
    pub action: AuditEvent,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub outcome: AuditOutcome,
}

/// Every security event is also a counter (action and outcome only: both from fixed sets).
/// [`record`] counts the events it writes; a flow that writes its event inside a transaction of
/// its own (opening a login) counts it once that committed.
pub fn count(action: AuditEvent, outcome: AuditOutcome) {
    metrics::counter!("rampart_audit_events_total", "action" => action.as_str(), "outcome" => outcome.as_str())
        .increment(1);
}

/// Appends an event. A failed write is logged loudly but does not fail the user's request: the
/// action it records has already happened, and refusing the response would not undo it.
pub async fn record(state: &AppState, ctx: &RequestContext, event: Audit<'_>) {
    count(event.action, event.outcome);
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
    if let Err(e) = state.store.append_audit(&row).await {
        tracing::error!(action = event.action.as_str(), error = %e, "audit write failed");
    }
}
