//! The plain-text messages. Each takes what it shows and nothing else; links carry tokens in the
//! URL fragment (`#token=`), which browsers never send to a server or put in a `Referer`.

use crate::{Message, Priority};

fn minutes(d: std::time::Duration) -> String {
    let m = d.as_secs().div_ceil(60).max(1);
    if m.is_multiple_of(60) && m >= 60 { format!("{} hour(s)", m / 60) } else { format!("{m} minute(s)") }
}

pub fn password_reset(to: &str, link: &str, valid_for: std::time::Duration) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "Reset your password".into(),
        body: format!(
            "Someone (hopefully you) asked to reset the password of this account.\n\n\
             To choose a new password, open this link within {}:\n\n{link}\n\n\
             The link works once. If you did not ask for this, ignore this message: your password stays as it is.\n",
            minutes(valid_for)
        ),
    }
}

pub fn verify_email(to: &str, link: &str, valid_for: std::time::Duration) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Routine,
        subject: "Verify your email address".into(),
        body: format!(
            "Please confirm that this address belongs to you by opening this link within {}:\n\n{link}\n\n\
             If you did not create an account, ignore this message.\n",
            minutes(valid_for)
        ),
    }
}

pub fn password_changed(to: &str) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "Your password was changed".into(),
        body: "The password of your account was just changed, and every other session was signed out.\n\n\
               If this was not you, reset your password now and contact the administrator.\n"
            .into(),
    }
}

pub fn account_locked(to: &str, for_how_long: std::time::Duration) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "Your account was locked".into(),
        body: format!(
            "There were too many failed sign-in attempts on your account, so new sign-ins are refused for {}.\n\n\
             Your existing sessions were not signed out. If these attempts were not yours, consider changing your password.\n",
            minutes(for_how_long)
        ),
    }
}

/// To the owner of an address that someone tried to register again: the attempt itself, and a
/// way back in that only the mailbox holder can use. (When the account is unverified, the
/// attempt may be someone else's claim on the address: the reset makes the owner's password the
/// only one, and voids the verification links mailed under the other.)
pub fn signup_attempt(to: &str, reset_link: &str, valid_for: std::time::Duration) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Routine,
        subject: "Someone tried to sign up with your address".into(),
        body: format!(
            "Someone just tried to create an account with this email address, which already has one.\n\n\
             If it was you: you already have an account. To set a new password, open this link within {}:\n\n{reset_link}\n\n\
             If it was not you, ignore this message (the link works once); nobody can use your address without this mailbox.\n",
            minutes(valid_for)
        ),
    }
}

/// Sent when a second factor is enabled: if the owner did not do it, someone holding their
/// session (and password) just made the account theirs, and this message is how the owner finds
/// out while an admin can still reset it.
pub fn second_factor_added(to: &str) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "A second factor was added to your account".into(),
        body: "An authenticator app (TOTP) was just set up as a second factor of your account: from now on, \
               signing in asks for one of its codes.\n\n\
               If this was not you, someone else has access to your account. Reset your password now and ask \
               the administrator to remove the second factor.\n"
            .into(),
    }
}

/// Who removed a second factor, as the owner is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedBy {
    /// The owner's own session, with the password and a code.
    Owner,
    /// An administrator, through the admin API or the command line.
    Administrator,
}

pub fn second_factor_removed(to: &str, by: RemovedBy) -> Message {
    let how = match by {
        RemovedBy::Owner => "was just turned off from a signed-in session, with your password and a code",
        RemovedBy::Administrator => "was just removed by an administrator",
    };
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "Two-factor authentication was removed from your account".into(),
        body: format!(
            "Two-factor authentication {how}: signing in no longer asks for a code.\n\n\
             If you did not ask for this, reset your password now and contact the administrator. \
             You can set up a second factor again from your account.\n"
        ),
    }
}

/// Sent when a passkey is added: if the owner did not do it, someone holding their session can
/// now sign in as them without the password, and this message is how the owner finds out.
pub fn passkey_added(to: &str) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "A passkey was added to your account".into(),
        body: "A passkey was just added to your account: it can sign in without your password.\n\n\
               If this was not you, someone else has access to your account. Remove the passkey from your \
               account, reset your password, and tell the administrator.\n"
            .into(),
    }
}

/// Sent when a passkey is removed, so that a thief removing the owner's passkey does not go
/// unnoticed.
pub fn passkey_removed(to: &str) -> Message {
    Message {
        to: to.to_owned(),
        priority: Priority::Security,
        subject: "A passkey was removed from your account".into(),
        body: "A passkey was just removed from your account by a signed-in session.\n\n\
               If this was not you, reset your password now and contact the administrator.\n"
            .into(),
    }
}
