//! `rampart user create`.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use rampart_core::auth::hasher::Hasher;
use rampart_core::clock::now_ms;
use rampart_core::email::Email;
use rampart_core::password::PasswordPolicy;
use rampart_store::{NewUser, StoreError};
use secrecy::SecretString;

use crate::Failure;

pub async fn create(path: Option<&Path>, email: &str, role: Option<&str>) -> Result<(), Failure> {
    let (loaded, _) = super::load_checked(path)?;
    let c = &loaded.config;
    let email = Email::parse(email).map_err(|e| Failure::config(format!("--email: {e}")))?;
    let mut roles = vec!["user"];
    if let Some(role) = role {
        let known = role == "admin" || role == "user" || c.roles.declared.iter().any(|r| r == role);
        if !known {
            return Err(Failure::config(format!(
                "--role: unknown role `{role}` (built in: user, admin; declared: {:?})",
                c.roles.declared
            )));
        }
        if role != "user" {
            roles.push(role);
        }
    }
    let password = read_password()?;
    PasswordPolicy { min_score: c.auth.password_min_score }
        .check(&password, &[email.normalized()])
        .map_err(|e| Failure::config(format!("password {e}")))?;

    let store = super::open_store(c, &super::registry(c)?).await?;
    let hasher = Hasher::start(c.auth.password_hash.params(), 1, 1).map_err(|e| Failure::runtime(e.to_string()))?;
    let hash = hasher.hash(password).await.map_err(|e| Failure::runtime(e.to_string()))?;
    let id = rampart_core::token::new_id();
    let user = store
        .insert_user(&NewUser {
            id: &id,
            email: email.as_str(),
            email_normalized: email.normalized(),
            password_hash: &hash,
            roles: &roles,
            now: now_ms(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict => Failure::runtime(format!("a user with email {} already exists", email.as_str())),
            e => Failure::runtime(e.to_string()),
        })?;
    store.close().await;
    println!("created user {} <{}> with roles {}", user.id, user.email, user.roles);
    Ok(())
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
