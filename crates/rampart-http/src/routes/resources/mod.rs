//! `/api/{resource}`: the record API over declared resources.
//!
//! Access is decided once per request into a [`Scope`] and the scope is part of the SQL
//! statement that reads or writes. What a caller may not see is answered exactly like what does
//! not exist (404), in the same time; a caller who can see a record but may not do the requested
//! thing to it gets 403. Every denial that concerns an existing record is audited as
//! `authz_denied` (repeats coalesced, written in the background: see `denial_audit`).

pub(crate) mod body;
pub(crate) mod list;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use rampart_core::clock::now_ms;
use rampart_core::resources::policy::decide;
use rampart_core::resources::{Action, Principal, Resource, Scope};
use serde_json::{Map, Value};

use super::route_policy::{ApiKeys, Caching, RoutePolicy, Routes};
use crate::extract::{ApiJson, Credential, MaybeAuthenticated, RecordPath, RequestContext};
use crate::flows::api_keys::KeyGrant;
use crate::{ApiError, AppState};

/// Records belong to one caller: nothing may keep a copy, never a shared cache. API keys are
/// accepted (their scopes are checked per action). Also what an unmatched path under `/api` gets.
pub const RECORDS: RoutePolicy = RoutePolicy::JSON.caching(Caching::PrivateNoStore).api_keys(ApiKeys::Accepted);

pub fn routes() -> Routes {
    Routes::new().route("/{resource}", RECORDS, get(list::list).post(create)).route(
        "/{resource}/{id}",
        RECORDS,
        get(read).patch(update).delete(remove),
    )
}

/// The resource named in the path; an undeclared name is a plain 404.
pub(crate) fn resource<'a>(state: &'a AppState, name: &str) -> Result<&'a Resource, ApiError> {
    state.settings.resources.get(name).ok_or(ApiError::NotFound)
}

/// The caller as the policy sees it. For an API key, `roles` are already the key's roles
/// intersected with its owner's current ones, and `key` holds its scopes.
pub(crate) struct Caller {
    auth: Option<(String, Vec<String>)>,
    key: Option<KeyGrant>,
}

impl Caller {
    fn new(who: &MaybeAuthenticated) -> Self {
        let key = who.0.as_ref().and_then(|a| match &a.credential {
            Credential::ApiKey(grant) => Some(grant.clone()),
            _ => None,
        });
        Self { auth: who.0.as_ref().map(|a| (a.user.id.clone(), a.user.roles())), key }
    }
    /// Refuses (403, audited) an action the caller's API key is not scoped for. The same answer
    /// for every record id, before any lookup, so it says nothing about which records exist.
    fn check_key(
        &self,
        state: &AppState,
        ctx: &RequestContext,
        res: &Resource,
        action: Action,
    ) -> Result<(), ApiError> {
        match &self.key {
            Some(key) if !key.allows(&res.name, action) => {
                state.denials.note(ctx, self.id(), verb(action), format!("{}:api_key_scope", res.name));
                Err(ApiError::Forbidden("this API key's scopes do not include this action"))
            }
            _ => Ok(()),
        }
    }
    /// A signed-in user (a page visitor): the same policy, the same scopes as on `/api`.
    pub(crate) fn user(user: &rampart_store::UserRow) -> Self {
        Self { auth: Some((user.id.clone(), user.roles())), key: None }
    }

    pub(crate) fn principal(&self) -> Option<Principal<'_>> {
        self.auth.as_ref().map(|(id, roles)| Principal { user_id: id, roles })
    }
    fn id(&self) -> Option<&str> {
        self.auth.as_ref().map(|(id, _)| id.as_str())
    }
    pub(crate) fn scope(&self, res: &Resource, action: Action) -> Option<Scope> {
        if self.key.as_ref().is_some_and(|k| !k.allows(&res.name, action)) {
            return None;
        }
        decide(res.rule(action), self.principal(), res.owner.is_some())
    }
    /// Denied outright: anonymous callers are asked who they are (401), others refused (403).
    fn refuse(&self) -> ApiError {
        if self.auth.is_none() {
            ApiError::Unauthorized("authentication required")
        } else {
            ApiError::Forbidden("not allowed")
        }
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(resource = %name))]
async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ctx: RequestContext,
    who: MaybeAuthenticated,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let caller = Caller::new(&who);
    caller.check_key(&state, &ctx, res, Action::Create)?;
    caller.scope(res, Action::Create).ok_or_else(|| caller.refuse())?;
    // The creator owns the record; the owner column is never taken from the body.
    let owner = match (&res.owner, caller.id()) {
        (Some(_), Some(id)) => Some(id.to_owned()),
        (Some(_), None) => return Err(ApiError::Unauthorized("authentication required")),
        (None, _) => None,
    };
    let values = body::writable(res, body, caller.principal(), true, true)?;
    let id = rampart_core::opaque_token::new_id();
    let rec = state.store.insert_record(res, &id, owner.as_deref(), now_ms(), values).await?;
    let location = format!("/api/{}/{}", res.name, rec.id);
    let out = body::RecordJson { res, rec: &rec, who: caller.principal() };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(out)).into_response())
}

#[tracing::instrument(level = "debug", skip_all, fields(resource = %name))]
async fn read(
    State(state): State<AppState>,
    ctx: RequestContext,
    who: MaybeAuthenticated,
    RecordPath { resource: name, id }: RecordPath,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let caller = Caller::new(&who);
    let rec = fetch_record(&state, &ctx, &caller, res, &id).await?;
    Ok(Json(body::RecordJson { res, rec: &rec, who: caller.principal() }).into_response())
}

/// One record as `caller` may see it; 404 (audited when it exists) otherwise.
pub(crate) async fn read_record(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
) -> Result<Value, ApiError> {
    let rec = fetch_record(state, ctx, caller, res, id).await?;
    Ok(body::render(res, &rec, caller.principal()))
}

/// [`read_record`] before rendering.
async fn fetch_record(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
) -> Result<rampart_store::Record, ApiError> {
    let scope = record_scope(state, ctx, caller, res, id, Action::Read).await?;
    match state.store.get_record(res, id, &scope).await? {
        Some(rec) => Ok(rec),
        None => Err(denied(state, ctx, caller, res, id, Action::Read).await),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(resource = %name))]
async fn update(
    State(state): State<AppState>,
    ctx: RequestContext,
    who: MaybeAuthenticated,
    RecordPath { resource: name, id }: RecordPath,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let res = resource(&state, &name)?;
    Ok(Json(update_record(&state, &ctx, &Caller::new(&who), res, &id, body).await?))
}

/// Updates the fields in `body` that `caller` may write, within the scope the policy grants.
pub(crate) async fn update_record(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let scope = record_scope(state, ctx, caller, res, id, Action::Update).await?;
    // Under an owner scope the statement can only touch the caller's own row.
    let owns = scope.owner().is_some();
    let values = body::writable(res, body, caller.principal(), false, owns)?;
    match state.store.update_record(res, id, &scope, now_ms(), values).await? {
        Some(rec) => Ok(body::render(res, &rec, caller.principal())),
        None => Err(denied(state, ctx, caller, res, id, Action::Update).await),
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(resource = %name))]
async fn remove(
    State(state): State<AppState>,
    ctx: RequestContext,
    who: MaybeAuthenticated,
    RecordPath { resource: name, id }: RecordPath,
) -> Result<StatusCode, ApiError> {
    let res = resource(&state, &name)?;
    delete_record(&state, &ctx, &Caller::new(&who), res, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the record within the scope the policy grants `caller`.
pub(crate) async fn delete_record(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
) -> Result<(), ApiError> {
    let scope = record_scope(state, ctx, caller, res, id, Action::Delete).await?;
    if state.store.delete_record(res, id, &scope).await? {
        Ok(())
    } else {
        Err(denied(state, ctx, caller, res, id, Action::Delete).await)
    }
}

/// The scope of a record-level action, or its refusal: 401 for an anonymous caller, else the
/// audited 404/403 of [`denied`].
async fn record_scope(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
    action: Action,
) -> Result<Scope, ApiError> {
    caller.check_key(state, ctx, res, action)?;
    match caller.scope(res, action) {
        Some(scope) => Ok(scope),
        None if caller.auth.is_none() => Err(caller.refuse()),
        None => Err(denied(state, ctx, caller, res, id, action).await),
    }
}

/// The answer when the caller's statement matched nothing or the action is not theirs: 404 if the
/// caller may not even see the record (or it does not exist), 403 if they may see it (only for
/// writes, where "you may not" is news to someone who can read it). Denials of existing records
/// are audited.
///
/// An existing record of someone else must cost what a missing id costs, or the answer time tells
/// which ids exist: one lookup that answers the same shape either way, and the audit is a note in
/// memory, written in the background. Nothing here writes to the database on the request path.
async fn denied(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    res: &Resource,
    id: &str,
    action: Action,
) -> ApiError {
    let read_scope = if action == Action::Read { None } else { caller.scope(res, Action::Read) };
    // A failed lookup answers as if there were nothing: 404, nothing audited.
    let (exists, readable) = state.store.record_presence(res, id, read_scope.as_ref()).await.unwrap_or_default();
    if !exists {
        return ApiError::NotFound;
    }
    state.denials.note(ctx, caller.id(), verb(action), format!("{}/{id}", res.name));
    if readable { ApiError::Forbidden("not allowed on this record") } else { ApiError::NotFound }
}

/// The attempted action, as the denial audit keys it.
fn verb(action: Action) -> &'static str {
    match action {
        Action::List => "list",
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}
