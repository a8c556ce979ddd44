//! The one-line notices a page shows after a redirect (`?notice=registered`): a fixed set of
//! sentences chosen by key, so that nothing from the URL is ever echoed as a message.

use maud::{Markup, html};

/// The sentence for `key`, if it is one of ours.
pub fn text(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "registered" => "Your account is ready. Sign in to continue.",
        "verify_sent" => "Check your inbox: we sent a link to confirm your email address.",
        "reset_sent" => "If an account exists for that address, we sent it a link to set a new password.",
        "reset_done" => "Your password was changed. Sign in with the new one.",
        "verified" => "Your email address is confirmed.",
        "signed_out" => "You are signed out.",
        "saved" => "Saved.",
        "password_changed" => "Your password was changed. Your other sessions were signed out.",
        "session_revoked" => "The session was signed out.",
        "mfa_disabled" => "Two-step verification is off.",
        "passkey_added" => "Your passkey was added. You can sign in with it from now on.",
        "passkey_renamed" => "The passkey was renamed.",
        "passkey_removed" => "The passkey was removed. It no longer signs you in.",
        "api_key_revoked" => "The API key was revoked. It stops working at once.",
        _ => return None,
    })
}

pub fn render(key: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text(key) {
            div class="notice" role="status" { (t) }
        }
    }
}
