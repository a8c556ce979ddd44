//! `rampart user create`, `rampart user mfa-reset`.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use rampart_core::auth::data_key::DataKey;
use rampart_core::auth::hasher::Hasher;
use rampart_core::clock::now_ms;
use rampart_core::config::Roles;
use rampart_core::email::Email;
use rampart_http::flows::AuthError;
use rampart_mail::templates::{self, RemovedBy};
use rampart_store::{AuditEvent, AuditOutcome, MfaReset, NewAuditEvent, Store, StoreError};
use secrecy::SecretString;

use crate::Failure;

pub async fn create(path: Option<&Path>, email: &str, role: Option<&str>) -> Result<(), Failure> {
    let c = &super::load_checked(path)?.settings;
    let email = Email::parse(email).map_err(|e| Failure::config(format!("--email: {e}")))?;
    let mut roles = vec!["user"];
    if let Some(role) = role {
        if !c.roles.is_known(role) {
            return Err(Failure::config(format!(
                "--role: unknown role `{role}` (built in: {}; declared: {:?})",
                Roles::BUILT_IN.join(", "),
                c.roles.declared
            )));
        }
        if role != "user" {
            roles.push(role);
        }
    }
    let password = read_password()?;
    c.auth
        .password_policy()
        .check(&password, &[email.normalized()])
        .map_err(|e| Failure::config(format!("password {e}")))?;

    let store = super::open_store(c).await?;
    let hasher = Hasher::start(c.auth.password_hash.params(), 1, 1).map_err(|e| Failure::runtime(e.to_string()))?;
    // The registration flow's own account creation: one way to hash and store a new account.
    let created = rampart_http::flows::registration::create_account(&store, &hasher, &email, password, &roles).await;
    let user = created.map_err(|e| match e {
        AuthError::EmailTaken => Failure::runtime(format!("a user with email {} already exists", email.as_str())),
        e => Failure::runtime(e.to_string()),
    })?;
    store.close().await;
    println!("created user {} <{}> with roles {}", user.id, user.email, user.roles);
    Ok(())
}

/// What `POST /admin/users/{id}/mfa/reset` does, for an operator at the console (say, when the only
/// admin lost their authenticator): every second factor of the user removed, the logins waiting
/// for one ended, audited `mfa_reset` (without an actor: the operator is no user), the owner
/// mailed when a factor was in force.
pub async fn mfa_reset(path: Option<&Path>, email: &str) -> Result<(), Failure> {
    let c = &super::load_checked(path)?.settings;
    let email = Email::parse(email).map_err(|e| Failure::config(format!("--email: {e}")))?;
    // The notice's body is sealed like the server's (see `rampart_mail::seal`).
    let key = super::serve::data_key(c)?;
    let store = super::open_store(c).await?;
    let result = reset_by_email(&store, &email, &key).await;
    store.close().await;
    let done = result?;
    println!("removed every second factor of user {} <{}>", done.user.id, done.user.email);
    if done.removed {
        // Queued in the reset's own transaction; a running server's outbox worker sends it.
        println!("the owner's notice is queued in the mail outbox; a running server sends it");
    }
    Ok(())
}

async fn reset_by_email(store: &Store, email: &Email, key: &DataKey) -> Result<MfaReset, Failure> {
    let database = |e: StoreError| Failure::runtime(format!("database: {e}"));
    let unknown = || Failure::runtime(format!("no user with email {}", email.as_str()));
    let user = store.user_by_email(email.normalized()).await.map_err(database)?.ok_or_else(unknown)?;
    let now = now_ms();
    // `None`: deleted since the lookup.
    let notice =
        |to: &str| rampart_mail::seal(key, templates::second_factor_removed(to, RemovedBy::Administrator)).ok();
    let done = store.reset_mfa(&user.id, now, notice).await.map_err(database)?.ok_or_else(unknown)?;
    let event = NewAuditEvent {
        action: AuditEvent::MfaReset,
        actor_id: None,
        target: Some(&user.id),
        ip: None,
        request_id: None,
        user_agent: None,
        outcome: AuditOutcome::Success,
        now,
    };
    store.append_audit(&event).await.map_err(|e| {
        Failure::runtime(format!("the second factor was removed, but the audit event could not be written: {e}"))
    })?;
    Ok(done)
}

fn read_password() -> Result<SecretString, Failure> {
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::runtime(format!("cannot read password: {e}")))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| Failure::runtime(format!("cannot read password: {e}")))?;
        if first != again {
            return Err(Failure::config("the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::runtime(format!("cannot read password from stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    Ok(SecretString::from(raw))
}
