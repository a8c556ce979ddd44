//! `RequireRole<R>`: the caller, authenticated and holding role `R`. A handler that takes it
//! cannot run for an anonymous caller (401) or for one without the role (403).
//!
//! The role is read from the user row (the database, or for bearer requests the one-second user
//! cache, which every write through this instance clears), not from the token's `roles` claim: a
//! demoted admin loses access with the write, and their old tokens are revoked besides, which
//! also covers other instances' caches.
//!
//! `/admin` puts it on every route with one `route_layer` ([`require`]); the handlers take it too,
//! to know who the admin is. The layer stores its result in the request, so the handler's copy
//! costs nothing, and a handler that somehow ran without the layer still checks for itself.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;
use rampart_store::UserRow;

use super::{Authenticated, Credential, RequestContext};
use crate::{ApiError, AppState};

/// A role name known at compile time.
pub trait Role: Send + Sync + 'static {
    const NAME: &'static str;
}

/// The built-in `admin` role.
#[derive(Clone, Copy)]
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

pub struct RequireRole<R: Role> {
    pub user: UserRow,
    /// The login the request came with (cookie session id or token `sid`).
    pub session_id: String,
    role: PhantomData<R>,
}

impl<R: Role> Clone for RequireRole<R> {
    fn clone(&self) -> Self {
        Self { user: self.user.clone(), session_id: self.session_id.clone(), role: PhantomData }
    }
}

impl<R: Role> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(done) = parts.extensions.get::<RequireRole<R>>() {
            return Ok(done.clone());
        }
        // No or bad credentials: 401 from `Authenticated`, before the role is looked at.
        let auth = Authenticated::from_request_parts(parts, state).await?;
        // No role-guarded route answers to an API key, whatever its owner's roles (the guard
        // already refuses keys outside `/api`; this holds even if a route moved).
        if matches!(auth.credential, Credential::ApiKey(_)) {
            return Err(ApiError::Forbidden("an API key cannot be used here"));
        }
        if !auth.user.has_role(R::NAME) {
            // A signed-in user probing for privileged routes is worth a line in the audit log.
            // The target names the missing role; the request id leads to the access-log line
            // with the method and path (a nested router only sees the path below its prefix).
            // Repeats are coalesced into one row with a count (see `denial_audit`).
            if let Ok(ctx) = RequestContext::from_request_parts(parts, state).await {
                state.denials.note(&ctx, Some(&auth.user.id), "role", format!("role:{}", R::NAME));
            }
            return Err(ApiError::Forbidden("this needs a role you do not have"));
        }
        let checked = Self { user: auth.user, session_id: auth.session_id, role: PhantomData };
        parts.extensions.insert(checked.clone());
        Ok(checked)
    }
}

/// Middleware for `route_layer`: every route below it requires role `R`.
pub async fn require<R: Role>(caller: RequireRole<R>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(caller);
    next.run(req).await
}
