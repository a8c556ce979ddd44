//! Passkeys (WebAuthn) below HTTP: the relying party, and the three ceremonies that use it:
//! adding a passkey to a signed-in account, signing in with a discoverable passkey (no email
//! asked), and answering a login's second-factor challenge with a passkey.
//!
//! Every check of what the authenticator sent (the challenge, the origin, the rp id hash, user
//! presence and verification, the signature, the counter) is webauthn-rs's, never ours. What is
//! ours is where its state lives and who may finish it:
//!
//! - a ceremony's state is a `passkey_challenges` row under the hash of a random `challenge_id`,
//!   taken (read and deleted in one statement) by whoever finishes it: single use, on any
//!   instance, and only by the same kind of ceremony; registration and second-factor challenges
//!   also name their user (and the latter its `mfa_token`), and are refused to anyone else;
//! - a challenge expires after `auth.passkeys.challenge_ttl` (2 minutes);
//! - every ceremony endpoint spends the login budgets first, and a failed sign-in assertion counts
//!   towards the lockout of the account whose passkey it names, like a wrong password;
//! - a verified use is recorded only if the signature counter moved forward since it was read
//!   (webauthn-rs refuses a counter going backwards; the guarded `UPDATE` also refuses two uses
//!   racing with one counter value);
//! - a credential id belongs to one account: the unique index refuses a second registration.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_core::clock::{duration_ms, now_ms};
use rampart_core::config::Settings;
use rampart_core::opaque_token;
use rampart_store::{
    AuditEvent, AuditOutcome, Ceremony, NewPasskey, NewPasskeyChallenge, PasskeyChallengeRow, PasskeyRow, PasskeyUse,
    SignInMethod, StoreError, UserRow,
};
use secrecy::SecretString;
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::attempt::Attempt;
use super::budget::spend_login_budgets;
use super::second_factor::NewRecoveryCodes;
use super::{AuthError, SignedIn};
use crate::AppState;
use crate::extract::{PresentedToken, RequestContext};
use crate::routes::audit_trail::{Audit, record};

/// The longest passkey name we keep.
pub const NAME_MAX: usize = 64;

/// The relying party: our origin and rp id, as webauthn-rs checks them. `None` when
/// `server.public_url` has no domain name (an IP address: WebAuthn needs a domain as rp id); the
/// rest of the server runs, and the passkey endpoints answer 503 (`rampart check` warns).
pub struct RelyingParty {
    webauthn: Option<Webauthn>,
}

impl RelyingParty {
    /// From `server.public_url` and `auth.passkeys` (checked already by the config check).
    pub fn new(settings: &Settings) -> Result<Self, String> {
        if settings.auth.passkeys.rp_id.is_none()
            && settings.server.public_origin.host().parse::<std::net::IpAddr>().is_ok()
        {
            return Ok(Self { webauthn: None });
        }
        let origin = Url::parse(settings.server.public_origin.as_str()).map_err(|e| format!("passkeys: {e}"))?;
        let host = settings.server.public_origin.host().to_owned();
        let p = &settings.auth.passkeys;
        let rp_id = p.rp_id.clone().unwrap_or(host);
        let rp_name = p.rp_name.clone().unwrap_or_else(|| rp_id.clone());
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name(&rp_name).timeout(p.challenge_ttl).build())
            .map_err(|e| format!("passkeys: the relying party cannot be {rp_id} for {}: {e}", origin.as_str()))?;
        Ok(Self { webauthn: Some(webauthn) })
    }

    fn webauthn(&self) -> Result<&Webauthn, AuthError> {
        self.webauthn.as_ref().ok_or_else(|| {
            AuthError::Unavailable("passkeys need server.public_url with a domain name (not an IP address)".into())
        })
    }
}

/// A started ceremony, as the client gets it: the id to send back, and the WebAuthn options (the
/// `publicKey` member of what `navigator.credentials.create` / `get` take, in the JSON form that
/// `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read).
pub struct Started {
    pub challenge_id: SecretString,
    pub options: Value,
}

/// Whether the user must sign in with a passkey (`auth.passkeys.required_for_roles`).
pub fn required_for(state: &AppState, user: &UserRow) -> bool {
    state.settings.auth.passkeys.required_for_roles.iter().any(|r| user.has_role(r))
}

/// `POST /auth/passkeys/register/start`: options to create a passkey for `user`, excluding the
/// ones it has (an authenticator that holds one of them declines rather than make a second).
pub async fn start_registration(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    name: Option<&str>,
) -> Result<Started, AuthError> {
    spend_login_budgets(state, ctx, Some(&user.email_normalized), None).await?;
    let user_handle = Uuid::parse_str(&user.id).map_err(|e| AuthError::Internal(format!("passkeys: user id: {e}")))?;
    let existing = state.store.passkeys_of_user(&user.id).await?;
    let exclude = existing.iter().map(|p| open_passkey(p).map(|k| k.cred_id().clone())).collect::<Result<_, _>>()?;
    let display = user.display_name.as_deref().unwrap_or(&user.email);
    let (options, reg) = state
        .passkeys
        .webauthn()?
        .start_passkey_registration(user_handle, &user.email, display, Some(exclude))
        .map_err(|e| AuthError::Internal(format!("passkeys: start registration: {e}")))?;
    let mut options = public_key(serde_json::to_value(options))?;
    // A discoverable credential (resident key), so that signing in needs no email first.
    // webauthn-rs leaves this to the authenticator; we ask for it.
    if let Some(sel) = options.get_mut("authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    let state_json = to_json(&reg)?;
    let challenge_id = store_challenge(state, Ceremony::Register, Some(&user.id), None, name, &state_json).await?;
    Ok(Started { challenge_id, options })
}

/// A passkey just added, and the recovery codes issued with it: shown this once, `None` when the
/// user already held unused ones.
pub struct Registered {
    pub passkey: PasskeyRow,
    pub recovery_codes: Option<Vec<SecretString>>,
}

/// `POST /auth/passkeys/register/finish`: verifies the new credential against the ceremony that
/// `user` started and stores it, with recovery codes when the user holds no unused one (a
/// passkey-only account would otherwise have no way past losing every passkey but an admin).
/// Nothing is stored when anything is wrong.
pub async fn finish_registration(
    state: &AppState,
    ctx: &RequestContext,
    user: &UserRow,
    challenge_id: &PresentedToken,
    credential: &RegisterPublicKeyCredential,
    name: Option<&str>,
) -> Result<Registered, AuthError> {
    spend_login_budgets(state, ctx, Some(&user.email_normalized), None).await?;
    let row = take_challenge(state, challenge_id, Ceremony::Register).await?;
    // Another user's ceremony: refused (and spent, so it cannot be tried again).
    if row.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(AuthError::PasskeyChallenge);
    }
    let reg: PasskeyRegistration = from_json(&row.state)?;
    let passkey = state.passkeys.webauthn()?.finish_passkey_registration(credential, &reg).map_err(|e| {
        tracing::info!(reason = %e, "passkey registration refused");
        AuthError::field("credential", "is not a valid passkey for this site and ceremony")
    })?;
    let serialized = to_json(&passkey)?;
    let facts = Facts::of(&serialized)?;
    let id = opaque_token::new_id();
    let now = now_ms();
    let name = name.or(row.name.as_deref()).map_or_else(|| default_name(now), str::to_owned);
    let credential_id = URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice());
    let new = NewPasskey {
        id: &id,
        user_id: &user.id,
        credential_id: &credential_id,
        name: &name,
        credential: &serialized,
        sign_count: facts.counter,
        backup_eligible: facts.backup_eligible,
        backed_up: facts.backed_up,
        now,
    };
    // Made whether or not the store keeps them (it decides, under the user's lock): ten random
    // codes and their hashes cost nothing next to the ceremony.
    let recovery = NewRecoveryCodes::generate();
    let issued = match state.store.insert_passkey(&new, &recovery.hashes).await {
        Ok(issued) => issued,
        Err(StoreError::Conflict) => return Err(AuthError::PasskeyTaken),
        Err(e) => return Err(e.into()),
    };
    let event = Audit {
        action: AuditEvent::PasskeyAdded,
        actor_id: Some(&user.id),
        target: Some(&id),
        outcome: AuditOutcome::Success,
    };
    record(state, ctx, event).await;
    super::mailing::queue_notice(state, &user.id, rampart_mail::templates::passkey_added(&user.email)).await;
    let passkey = PasskeyRow {
        id,
        user_id: user.id.clone(),
        credential_id,
        name,
        credential: serialized,
        sign_count: facts.counter,
        backup_eligible: facts.backup_eligible,
        backed_up: facts.backed_up,
        created_at: now,
        last_used_at: None,
    };
    Ok(Registered { passkey, recovery_codes: issued.then_some(recovery.codes) })
}

/// `POST /auth/passkeys/login/start`: options for a discoverable sign-in (no email, no list of
/// credentials: the authenticator offers what it holds for our rp id).
pub async fn start_login(state: &AppState, ctx: &RequestContext) -> Result<Started, AuthError> {
    spend_login_budgets(state, ctx, None, None).await?;
    let (options, auth) = state
        .passkeys
        .webauthn()?
        .start_discoverable_authentication()
        .map_err(|e| AuthError::Internal(format!("passkeys: start sign-in: {e}")))?;
    let options = public_key(serde_json::to_value(options))?;
    let state_json = to_json(&auth)?;
    let challenge_id = store_challenge(state, Ceremony::Login, None, None, None, &state_json).await?;
    Ok(Started { challenge_id, options })
}

/// `POST /auth/passkeys/login/finish`: the user whose passkey signed the challenge (signed in by
/// the passkey alone), when everything checks out; the caller opens what was asked for (session
/// or tokens).
pub async fn finish_login(
    state: &AppState,
    ctx: &RequestContext,
    challenge_id: &PresentedToken,
    credential: &PublicKeyCredential,
) -> Result<SignedIn, AuthError> {
    spend_login_budgets(state, ctx, None, None).await?;
    let row = take_challenge(state, challenge_id, Ceremony::Login).await?;
    let auth: DiscoverableAuthentication = from_json(&row.state)?;
    let (user_handle, cred_id) = state
        .passkeys
        .webauthn()?
        .identify_discoverable_authentication(credential)
        .map_err(|_| AuthError::PasskeyRefused)?;
    let stored = state.store.passkey_by_credential(&URL_SAFE_NO_PAD.encode(cred_id)).await?;
    // The user handle the authenticator returned must be the owner of the credential it names.
    let Some(stored) = stored.filter(|p| Uuid::parse_str(&p.user_id).is_ok_and(|u| u == user_handle)) else {
        failure(state, ctx, None).await;
        return Err(AuthError::PasskeyRefused);
    };
    let Some(user) = state.store.user_by_id(&stored.user_id).await? else {
        return Err(AuthError::PasskeyRefused);
    };
    spend_login_budgets_account(state, &user).await?;
    // Reserved before the signature is looked at, like a password attempt: a locked account's
    // passkey is not even checked, and a bad assertion counts towards its lockout.
    let attempt = Attempt::reserve(state, ctx, Some(&user), &user.email_normalized).await?;
    let mut passkey = match open_passkey(&stored) {
        Ok(p) => p,
        Err(e) => {
            attempt.release(state).await;
            return Err(e);
        }
    };
    let verified = state.passkeys.webauthn()?.finish_discoverable_authentication_v2(credential, auth, &passkey);
    let recorded = match verified {
        Ok(result) => {
            passkey.update_credential(&result);
            record_use(state, &user, &stored, &passkey).await?
        }
        Err(e) => {
            tracing::info!(reason = %e, "passkey sign-in refused");
            false
        }
    };
    if !recorded {
        failure(state, ctx, Some(&user)).await;
        attempt.failed(state, ctx).await;
        return Err(AuthError::PasskeyRefused);
    }
    Ok(attempt.proven(user, SignInMethod::Passkey))
}

/// `POST /auth/mfa/passkey/start`: options to answer the login waiting behind `mfa_token` with
/// one of its user's passkeys.
pub async fn start_second_factor(
    state: &AppState,
    ctx: &RequestContext,
    mfa_token: &PresentedToken,
) -> Result<Started, AuthError> {
    let hash = mfa_token.hash().ok_or(AuthError::InvalidChallenge)?;
    let challenge = state.store.mfa_challenge(hash.as_str(), now_ms()).await?.ok_or(AuthError::InvalidChallenge)?;
    let user = state.store.user_by_id(&challenge.user_id).await?.ok_or(AuthError::InvalidChallenge)?;
    spend_login_budgets(state, ctx, Some(&user.email_normalized), None).await?;
    let rows = state.store.passkeys_of_user(&user.id).await?;
    if rows.is_empty() {
        return Err(AuthError::NoPasskey);
    }
    let keys = rows.iter().map(open_passkey).collect::<Result<Vec<_>, _>>()?;
    let (options, auth) = state
        .passkeys
        .webauthn()?
        .start_passkey_authentication(&keys)
        .map_err(|e| AuthError::Internal(format!("passkeys: start second factor: {e}")))?;
    let options = public_key(serde_json::to_value(options))?;
    let state_json = to_json(&auth)?;
    let challenge_id =
        store_challenge(state, Ceremony::Mfa, Some(&user.id), Some(hash.as_str()), None, &state_json).await?;
    Ok(Started { challenge_id, options })
}

/// A passkey assertion verified for the second factor: which passkey, in its updated form.
pub struct SecondFactorUse {
    pub passkey_id: String,
    pub credential: String,
    pub sign_count: i64,
    pub backed_up: bool,
}

impl SecondFactorUse {
    pub fn as_store(&self) -> PasskeyUse<'_> {
        PasskeyUse {
            id: &self.passkey_id,
            credential: &self.credential,
            sign_count: self.sign_count,
            backed_up: self.backed_up,
        }
    }
}

/// Checks a passkey assertion for the login waiting behind the `mfa_token` whose hash is
/// `mfa_hash`, of `user`: `None` when it is not right (the caller counts the failure). The use is
/// recorded by the caller, together with spending the `mfa_token`.
pub(crate) async fn verify_second_factor(
    state: &AppState,
    user: &UserRow,
    mfa_hash: &str,
    challenge_id: &PresentedToken,
    credential: &PublicKeyCredential,
) -> Result<Option<SecondFactorUse>, AuthError> {
    let row = take_challenge(state, challenge_id, Ceremony::Mfa).await?;
    if row.user_id.as_deref() != Some(user.id.as_str()) || row.mfa_token_hash.as_deref() != Some(mfa_hash) {
        return Err(AuthError::PasskeyChallenge);
    }
    let auth: PasskeyAuthentication = from_json(&row.state)?;
    let result = match state.passkeys.webauthn()?.finish_passkey_authentication(credential, &auth) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(reason = %e, "passkey second factor refused");
            return Ok(None);
        }
    };
    let cred_id = URL_SAFE_NO_PAD.encode(result.cred_id().as_slice());
    let Some(stored) = state.store.passkey_by_credential(&cred_id).await?.filter(|p| p.user_id == user.id) else {
        return Ok(None);
    };
    let mut passkey = open_passkey(&stored)?;
    passkey.update_credential(&result);
    let credential = to_json(&passkey)?;
    let facts = Facts::of(&credential)?;
    Ok(Some(SecondFactorUse {
        passkey_id: stored.id,
        credential,
        sign_count: facts.counter,
        backed_up: facts.backed_up,
    }))
}

/// The per-account login budget, once the account is known.
async fn spend_login_budgets_account(state: &AppState, user: &UserRow) -> Result<(), AuthError> {
    use rampart_shared::limit::Bucket;
    state.limiter.check(Bucket::LoginAccount(&user.email_normalized)).await.map_err(AuthError::RateLimited)
}

async fn record_use(
    state: &AppState,
    user: &UserRow,
    stored: &PasskeyRow,
    passkey: &Passkey,
) -> Result<bool, AuthError> {
    let credential = to_json(passkey)?;
    let facts = Facts::of(&credential)?;
    let used =
        PasskeyUse { id: &stored.id, credential: &credential, sign_count: facts.counter, backed_up: facts.backed_up };
    Ok(state.store.use_passkey(&user.id, used, now_ms()).await?)
}

async fn failure(state: &AppState, ctx: &RequestContext, user: Option<&UserRow>) {
    let event = Audit {
        action: AuditEvent::LoginFailure,
        actor_id: user.map(|u| u.id.as_str()),
        target: user.map(|u| u.email_normalized.as_str()),
        outcome: AuditOutcome::Failure,
    };
    record(state, ctx, event).await;
}

async fn store_challenge(
    state: &AppState,
    ceremony: Ceremony,
    user_id: Option<&str>,
    mfa_token_hash: Option<&str>,
    name: Option<&str>,
    state_json: &str,
) -> Result<SecretString, AuthError> {
    let (challenge_id, hash) = opaque_token::generate();
    let now = now_ms();
    let new = NewPasskeyChallenge {
        id_hash: hash.as_str(),
        ceremony,
        user_id,
        mfa_token_hash,
        name,
        state: state_json,
        now,
        expires_at: now + duration_ms(state.settings.auth.passkeys.challenge_ttl),
    };
    state.store.insert_passkey_challenge(&new).await?;
    Ok(challenge_id)
}

async fn take_challenge(
    state: &AppState,
    challenge_id: &PresentedToken,
    ceremony: Ceremony,
) -> Result<PasskeyChallengeRow, AuthError> {
    let hash = challenge_id.hash().ok_or(AuthError::PasskeyChallenge)?;
    state.store.take_passkey_challenge(hash.as_str(), ceremony, now_ms()).await?.ok_or(AuthError::PasskeyChallenge)
}

/// The `publicKey` member of webauthn-rs's `{publicKey, mediation?}` wrapper: what the browser's
/// JSON parsing functions take.
fn public_key(options: Result<Value, serde_json::Error>) -> Result<Value, AuthError> {
    let mut options = options.map_err(|e| AuthError::Internal(format!("passkeys: options: {e}")))?;
    options
        .get_mut("publicKey")
        .map(Value::take)
        .ok_or_else(|| AuthError::Internal("passkeys: options without publicKey".into()))
}

fn open_passkey(row: &PasskeyRow) -> Result<Passkey, AuthError> {
    from_json(&row.credential)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AuthError> {
    serde_json::to_string(value).map_err(|e| AuthError::Internal(format!("passkeys: serialize: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, AuthError> {
    serde_json::from_str(s).map_err(|e| AuthError::Internal(format!("passkeys: stored state: {e}")))
}

/// The counter and backup flags of a serialized passkey, kept as columns too (see the migration).
struct Facts {
    counter: i64,
    backup_eligible: bool,
    backed_up: bool,
}

impl Facts {
    fn of(serialized: &str) -> Result<Self, AuthError> {
        let v: Value = from_json(serialized)?;
        let cred = v.get("cred").ok_or_else(|| AuthError::Internal("passkeys: credential without cred".into()))?;
        let flag = |name: &str| cred.get(name).and_then(Value::as_bool).unwrap_or(false);
        Ok(Self {
            counter: cred.get("counter").and_then(Value::as_i64).unwrap_or(0),
            backup_eligible: flag("backup_eligible"),
            backed_up: flag("backup_state"),
        })
    }
}

fn default_name(now: i64) -> String {
    format!("Passkey added {}", rampart_core::clock::rfc3339(now).get(..10).unwrap_or("today"))
}
