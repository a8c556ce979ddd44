//! The mailed tokens: made, stored (as a hash) and queued off the request path, so that a request
//! answers in the same time whether or not a mail goes out, and a database or mail hiccup never
//! reaches the client. Failures are logged.
//!
//! The token row and the outbox row that carries it are written in one transaction: a token is
//! never stored without its mail, nor a mail queued for a token that was not (a throttled one).

use rampart_core::clock::{Millis, duration_ms, now_ms};
use rampart_mail::templates;
use rampart_store::{Purpose, UserRow};
use secrecy::ExposeSecret;

use crate::AppState;

/// How often mail that anyone can make Rampart send to an address (a verification link, after a
/// registration or a login with the right password; a sign-up notice) goes to one account at
/// most: a loop of such requests must not turn the server into a mail cannon aimed at one inbox.
const THROTTLE_MS: Millis = 10 * 60 * 1000;

/// Mails a verification link to the user's address, at most once every ten minutes.
pub fn send_verification(state: &AppState, user: &UserRow) {
    send_token(state, user, Mail::Verification);
}

/// Mails a password-reset link to the user's address.
pub fn send_reset(state: &AppState, user: &UserRow) {
    send_token(state, user, Mail::Reset);
}

/// Tells the owner of a registered address that someone tried to register it again, with a
/// password-reset link; at most once every ten minutes.
pub fn send_signup_attempt(state: &AppState, user: &UserRow) {
    send_token(state, user, Mail::SignupAttempt);
}

#[derive(Clone, Copy)]
enum Mail {
    Verification,
    Reset,
    SignupAttempt,
}

fn send_token(state: &AppState, user: &UserRow, mail: Mail) {
    let (state, user_id, to) = (state.clone(), user.id.clone(), user.email.clone());
    tokio::spawn(async move {
        let auth = &state.settings.auth;
        let (purpose, ttl, throttled) = match mail {
            Mail::Verification => (Purpose::EmailVerify, auth.email_verification_ttl, true),
            Mail::Reset => (Purpose::PasswordReset, auth.password_reset_ttl, false),
            Mail::SignupAttempt => (Purpose::PasswordReset, auth.password_reset_ttl, true),
        };
        let (token, hash) = rampart_core::opaque_token::generate();
        let link = link(&state, purpose, token.expose_secret());
        let message = match mail {
            Mail::Verification => templates::verify_email(&to, &link, ttl),
            Mail::Reset => templates::password_reset(&to, &link, ttl),
            Mail::SignupAttempt => templates::signup_attempt(&to, &link, ttl),
        };
        let message = match state.mailer.seal(message) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(user_id = %user_id, error = %e, "could not seal a mail; no token stored, no mail queued");
                return;
            }
        };
        let now = now_ms();
        let not_since = throttled.then(|| now - THROTTLE_MS);
        let expires = now + duration_ms(ttl);
        let stored =
            state.store.insert_account_token(hash.as_str(), &user_id, purpose, now, expires, not_since, &message);
        match stored.await {
            Ok(true) => state.mailer.wake(),
            Ok(false) => tracing::info!(user_id = %user_id, "mail throttled: one was sent to this account recently"),
            Err(e) => tracing::error!(user_id = %user_id, error = %e, "could not store a mailed token; no mail queued"),
        }
    });
}

/// The link in the mail: `mail.reset_link` / `mail.verify_link` with `{token}` replaced, or a
/// default under the public URL: our own pages (`/ui/reset`, `/ui/verify`) when they are on,
/// else the paths an application is expected to serve (`/reset-password`, `/verify-email`). The
/// token goes in the fragment, which no browser sends to a server or in a `Referer`; the page's
/// script reads it from there.
fn link(state: &AppState, purpose: Purpose, token: &str) -> String {
    let mail = &state.settings.mail;
    let pages = state.settings.ui.enabled;
    let (configured, path) = match purpose {
        Purpose::PasswordReset => (&mail.reset_link, if pages { "ui/reset" } else { "reset-password" }),
        Purpose::EmailVerify => (&mail.verify_link, if pages { "ui/verify" } else { "verify-email" }),
    };
    match configured {
        Some(template) => template.replace("{token}", token),
        None => format!("{}/{path}#token={token}", state.settings.server.public_url.trim_end_matches('/')),
    }
}

/// Queues a notice that has no write of its own to share a transaction with (a passkey added or
/// removed, a lockout: the change is already committed when the notice is made). A notice that cannot be
/// queued is logged, never an error for the request: the change it reports stands either way.
pub async fn queue_notice(state: &AppState, user_id: &str, message: rampart_mail::Message) {
    let subject = message.subject.clone();
    let queued = match state.mailer.seal(message) {
        Ok(mail) => state.store.enqueue_mail(&mail, now_ms()).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match queued {
        Ok(()) => state.mailer.wake(),
        Err(e) => tracing::error!(user_id = %user_id, error = %e, subject = %subject, "could not queue a notice"),
    }
}
