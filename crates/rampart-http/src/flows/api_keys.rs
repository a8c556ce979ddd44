//! API keys, below HTTP: issuing one (with its narrowing checked against the owner), and
//! authenticating a presented one into the rights it has for this request.
//!
//! The rights of a key at each request are its roles intersected with its owner's *current*
//! roles (read in the same statement that finds the key), and its scopes: so a key is never more
//! than its owner now is, and demoting, locking or deleting the owner shrinks or ends it at once,
//! on every instance, because nothing about the owner is cached. The owner of a new key is always
//! the authenticated caller (or, for a service account, the account an admin names in the path),
//! never a value from the body: the CVE-2025-61928 class (a `userId` in the body trusted when no
//! session was present) has no field to ride in on.

use rampart_core::api_key::{self, Presented};
use rampart_core::clock::{Millis, now_ms};
use rampart_core::resources::{Action, Registry};
use rampart_shared::limit::Bucket;
use rampart_store::{ApiKeyRow, AuditEvent, AuditOutcome, LOCKED_INDEFINITELY, NewApiKey, UserRow};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::extract::RequestContext;
use crate::routes::audit_trail::{Audit, record};
use crate::{ApiError, AppState};

/// The answer to every key that does not authenticate, whatever the reason (unknown, wrong
/// secret, revoked, expired, rotated out, owner locked): one message, so the answer says nothing
/// about which.
pub const BAD_KEY: ApiError = ApiError::Unauthorized("invalid, expired or revoked API key");

/// A use is recorded at most this often per key: a write a minute, not one per request.
const TOUCH_EVERY_MS: Millis = 60_000;
/// The life of a key when `expires_in_days` is not given (capped by `auth.api_keys.max_ttl`).
const DEFAULT_DAYS: u64 = 90;
const DAY_MS: Millis = 86_400_000;
const NAME_MAX: usize = 100;
/// The longest grace a rotation may give the replaced secret.
pub const GRACE_HOURS_MAX: u32 = 24;

/// One narrowing entry: a declared resource and the verbs the key may use on it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyScope {
    pub resource: String,
    pub actions: Vec<String>,
}

/// `POST /auth/api-keys` and `POST /admin/users/{id}/api-keys`. No owner field: the owner is
/// who is signed in (or the service account in the path), and `user_id` is an unknown field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    #[serde(default, deserialize_with = "not_null")]
    pub expires_in_days: Option<u64>,
    #[serde(default, deserialize_with = "not_null")]
    pub roles: Option<Vec<String>>,
    #[serde(default, deserialize_with = "not_null")]
    pub scopes: Option<Vec<KeyScope>>,
}

/// An optional field may be left out, but not sent as `null`: `"roles": null` is not a role list,
/// and reading it as "not narrowed" would widen a key because of a client bug.
pub fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// What a new (or rotated) key is answered with: the key itself, this once.
#[derive(Serialize)]
pub struct IssuedKey {
    pub id: String,
    pub name: String,
    /// Not `Debug`, never logged: it goes to the client and nowhere else.
    #[serde(serialize_with = "expose")]
    pub key: SecretString,
    pub prefix: String,
    pub roles: Vec<String>,
    pub scopes: Option<Vec<KeyScope>>,
    pub expires_at: String,
    pub created_at: String,
}

fn expose<S: serde::Serializer>(key: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secrecy::ExposeSecret::expose_secret(key))
}

/// A key as listed: never the key, never its hash.
#[derive(Serialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub roles: Vec<String>,
    pub scopes: Option<Vec<KeyScope>>,
    pub expires_at: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
}

impl From<&ApiKeyRow> for KeyView {
    fn from(k: &ApiKeyRow) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            prefix: prefix_of(&k.id),
            roles: k.roles.split_whitespace().map(str::to_owned).collect(),
            scopes: stored_scopes(k.scopes.as_deref()),
            expires_at: rampart_core::clock::rfc3339(k.expires_at),
            created_at: rampart_core::clock::rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rampart_core::clock::rfc3339),
            last_used_ip: k.last_used_ip.clone(),
        }
    }
}

fn prefix_of(id: &str) -> String {
    uuid::Uuid::try_parse(id).map(|u| api_key::display_prefix(&u)).unwrap_or_else(|_| api_key::PREFIX.to_owned())
}

/// Scopes as stored (JSON written by [`issue`]); a row that does not parse grants nothing: an
/// empty list, never "not narrowed".
fn stored_scopes(raw: Option<&str>) -> Option<Vec<KeyScope>> {
    raw.map(|s| serde_json::from_str(s).unwrap_or_default())
}

/// What a key may do at this request, beyond what its (narrowed) roles allow.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    /// `None`: every declared resource and verb.
    scopes: Option<Vec<KeyScope>>,
}

impl KeyGrant {
    /// Whether the key's scopes include `action` on `resource`.
    pub fn allows(&self, resource: &str, action: Action) -> bool {
        let verb = verb_name(action);
        self.scopes
            .as_ref()
            .is_none_or(|scopes| scopes.iter().any(|s| s.resource == resource && s.actions.iter().any(|a| a == verb)))
    }
}

pub fn verb_name(action: Action) -> &'static str {
    match action {
        Action::List => "list",
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}

pub const VERBS: [&str; 5] = ["list", "read", "create", "update", "delete"];

/// Issues a key owned by `owner`, made by `created_by` (the owner, or the admin acting for a
/// service account). The narrowing is checked against the owner's roles now.
pub async fn issue(
    state: &AppState,
    owner: &UserRow,
    created_by: &str,
    req: NewKeyRequest,
) -> Result<IssuedKey, ApiError> {
    let now = now_ms();
    let checked = check_request(&req, owner, &state.settings.resources, state.settings.auth.api_keys.max_ttl, now)?;
    let id = uuid::Uuid::new_v4();
    let (key, hash) = api_key::mint(&id);
    let scopes_json = req
        .scopes
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::Internal(format!("scopes did not serialize: {e}")))?;
    let id_text = id.hyphenated().to_string();
    let row = state
        .store
        .insert_api_key(&NewApiKey {
            id: &id_text,
            user_id: &owner.id,
            name: &checked.name,
            secret_hash: hash.as_str(),
            roles: &checked.roles.join(" "),
            scopes: scopes_json.as_deref(),
            created_by,
            now,
            expires_at: checked.expires_at,
        })
        .await?;
    Ok(issued(&row, key))
}

pub fn issued(row: &ApiKeyRow, key: SecretString) -> IssuedKey {
    let view = KeyView::from(row);
    IssuedKey {
        id: view.id,
        name: view.name,
        key,
        prefix: view.prefix,
        roles: view.roles,
        scopes: view.scopes,
        expires_at: view.expires_at,
        created_at: view.created_at,
    }
}

struct Checked {
    name: String,
    roles: Vec<String>,
    expires_at: Millis,
}

/// Every problem of a request at once, as field errors.
fn check_request(
    req: &NewKeyRequest,
    owner: &UserRow,
    resources: &Registry,
    max_ttl: std::time::Duration,
    now: Millis,
) -> Result<Checked, ApiError> {
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        errors.push(FieldError::new("name", format!("must be 1 to {NAME_MAX} characters")));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "must not contain control characters"));
    }
    let max_days = max_ttl.as_secs() / 86_400;
    let days = req.expires_in_days.unwrap_or(DEFAULT_DAYS.min(max_days));
    if days == 0 || days > max_days {
        errors.push(FieldError::new("expires_in_days", format!("must be 1 to {max_days} (auth.api_keys.max_ttl)")));
    }
    let owned = owner.roles();
    let roles = match &req.roles {
        None => owned.clone(),
        Some(asked) => {
            let mut roles: Vec<String> = Vec::new();
            if asked.is_empty() {
                errors.push(FieldError::new("roles", "must list at least one role, or be left out"));
            }
            for r in asked {
                if !owned.contains(r) {
                    // The message does not quote the name: client text stays out of answers.
                    errors.push(FieldError::new("roles", "may only name roles the key's owner has"));
                    break;
                }
                if !roles.contains(r) {
                    roles.push(r.clone());
                }
            }
            roles
        }
    };
    if let Some(scopes) = &req.scopes {
        let mut seen: Vec<&str> = Vec::new();
        for (i, s) in scopes.iter().enumerate() {
            let field = format!("scopes[{i}]");
            if resources.get(&s.resource).is_none() {
                errors.push(FieldError::new(format!("{field}.resource"), "is not a declared resource"));
            } else if seen.contains(&s.resource.as_str()) {
                errors.push(FieldError::new(format!("{field}.resource"), "is listed twice"));
            }
            seen.push(&s.resource);
            if s.actions.is_empty() {
                errors.push(FieldError::new(format!("{field}.actions"), "must list at least one verb"));
            }
            if s.actions.iter().any(|a| !VERBS.contains(&a.as_str())) {
                errors.push(FieldError::new(
                    format!("{field}.actions"),
                    "each must be one of list, read, create, update, delete",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let days = i64::try_from(days).unwrap_or(i64::MAX / DAY_MS);
    Ok(Checked { name, roles, expires_at: now + days * DAY_MS })
}

/// Revokes `owner_id`'s key `id` (`DELETE /auth/api-keys/{id}` and the account page). `false`
/// when the owner has no such live key: another user's key is answered like a missing one.
pub async fn revoke(
    state: &AppState,
    ctx: &RequestContext,
    actor: &str,
    owner_id: &str,
    id: &str,
) -> Result<bool, ApiError> {
    // The key's row is read on every request that presents it, on every instance: once this
    // write commits, the key is refused everywhere.
    if !state.store.revoke_api_key(id, owner_id, now_ms()).await? {
        return Ok(false);
    }
    let event = Audit {
        action: AuditEvent::ApiKeyRevoked,
        actor_id: Some(actor),
        target: Some(id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    Ok(true)
}

/// A presented key, authenticated: the owner with the roles this key may use now, and the grant.
/// Every refusal is the same 401 ([`BAD_KEY`]). A malformed key costs no lookup; any other costs
/// exactly one (the key and its owner, by the key's primary key) and one constant-time compare.
pub async fn authenticate(state: &AppState, presented: &str, ip: &str) -> Result<(UserRow, KeyGrant), ApiError> {
    let p = Presented::parse(presented).ok_or(BAD_KEY)?;
    let row = state.store.api_key_auth(&p.id).await?.ok_or(BAD_KEY)?;
    let now = now_ms();
    let current = p.matches(&row.key_secret_hash);
    // The replaced secret of a rotation, during its grace only.
    let previous = row.key_previous_until.is_some_and(|until| now < until)
        && row.key_previous_hash.as_deref().is_some_and(|h| p.matches(h));
    if !(current || previous) || row.key_revoked_at.is_some() || now >= row.key_expires_at {
        return Err(BAD_KEY);
    }
    // An admin's lock ends the owner's keys. An automatic lockout (failed password guesses) does
    // not: anyone who knows the email could cause one, and it would switch the owner's automation
    // off for them.
    if row.user.locked_until.is_some_and(|until| until >= LOCKED_INDEFINITELY) {
        return Err(BAD_KEY);
    }
    // Only now, for a key whose secret matched, is its budget spent: a forged key cannot spend
    // a real key's budget.
    state.limiter.check(Bucket::ApiKey(&row.key_id)).await.map_err(ApiError::RateLimited)?;
    if row.key_last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_MS) {
        let store = state.store.clone();
        let (id, ip) = (row.key_id.clone(), ip.to_owned());
        // Off the request path; the statement itself writes only if nobody recorded a use in the
        // last minute, so racing requests and instances write once.
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(&id, &ip, now, now - TOUCH_EVERY_MS).await {
                tracing::warn!(error = %e, "could not record an API key's use");
            }
        });
    }
    let key_roles: Vec<&str> = row.key_roles.split_whitespace().collect();
    let mut user = row.user;
    let effective: Vec<String> = user.roles().into_iter().filter(|r| key_roles.contains(&r.as_str())).collect();
    user.roles = effective.join(" ");
    let grant = KeyGrant { key_id: row.key_id, scopes: stored_scopes(row.key_scopes.as_deref()) };
    Ok((user, grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scopes: Option<Vec<KeyScope>>) -> KeyGrant {
        KeyGrant { key_id: "k".into(), scopes }
    }

    #[test]
    fn scopes_allow_only_what_they_list() {
        let any = grant(None);
        assert!(any.allows("orders", Action::Delete));
        let narrow = grant(Some(vec![KeyScope { resource: "orders".into(), actions: vec!["read".into()] }]));
        assert!(narrow.allows("orders", Action::Read));
        assert!(!narrow.allows("orders", Action::List));
        assert!(!narrow.allows("notes", Action::Read));
        assert!(!grant(Some(Vec::new())).allows("orders", Action::Read));
        // A stored value that does not parse narrows to nothing, never to everything.
        assert_eq!(stored_scopes(Some("not json")), Some(Vec::new()));
    }
}
