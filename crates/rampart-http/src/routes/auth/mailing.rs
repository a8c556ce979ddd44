//! The mailed tokens: made, stored (as a hash) and queued off the request path, so that a request
//! answers in the same time whether or not a mail goes out, and a database or mail hiccup never
//! reaches the client. Failures are logged.

use rampart_core::clock::{duration_ms, now_ms};
use rampart_mail::templates;
use rampart_store::{Purpose, UserRow};
use secrecy::ExposeSecret;

use crate::AppState;

/// Mails a verification link to the user's address.
pub fn send_verification(state: &AppState, user: &UserRow) {
    send_token(state, user, Purpose::EmailVerify);
}

/// Mails a password-reset link to the user's address.
pub fn send_reset(state: &AppState, user: &UserRow) {
    send_token(state, user, Purpose::PasswordReset);
}

fn send_token(state: &AppState, user: &UserRow, purpose: Purpose) {
    let (state, user_id, to) = (state.clone(), user.id.clone(), user.email.clone());
    tokio::spawn(async move {
        let auth = &state.config.auth;
        let ttl = match purpose {
            Purpose::PasswordReset => auth.password_reset_ttl,
            Purpose::EmailVerify => auth.email_verification_ttl,
        };
        let (token, hash) = rampart_core::token::generate();
        let now = now_ms();
        if let Err(e) =
            state.store.insert_account_token(hash.as_str(), &user_id, purpose, now, now + duration_ms(ttl)).await
        {
            tracing::error!(user_id = %user_id, error = %e, "could not store a mailed token; no mail sent");
            return;
        }
        let message = match purpose {
            Purpose::PasswordReset => {
                templates::password_reset(&to, &link(&state, purpose, token.expose_secret()), ttl)
            }
            Purpose::EmailVerify => templates::verify_email(&to, &link(&state, purpose, token.expose_secret()), ttl),
        };
        state.mailer.send(message);
    });
}

/// The link in the mail: `mail.reset_link` / `mail.verify_link` with `{token}` replaced, or a
/// default under the public URL. The token goes in the fragment, which no browser sends to a
/// server or in a `Referer`.
fn link(state: &AppState, purpose: Purpose, token: &str) -> String {
    let mail = &state.config.mail;
    let (configured, path) = match purpose {
        Purpose::PasswordReset => (&mail.reset_link, "reset-password"),
        Purpose::EmailVerify => (&mail.verify_link, "verify-email"),
    };
    match configured {
        Some(template) => template.replace("{token}", token),
        None => format!("{}/{path}#token={token}", state.config.server.public_url.trim_end_matches('/')),
    }
}
