//! What a flow answers besides success.

use rampart_core::auth::hasher::HashError;
use rampart_shared::limit::Refusal;
use rampart_store::StoreError;
use secrecy::SecretString;

use crate::error::FieldError;

/// The outcomes of the authentication flows other than success. Each variant is one decision a
/// client may learn about; which of them share an answer (an unknown email and a wrong password,
/// say) is decided where they are mapped to HTTP, once.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// An unknown email, a wrong password, or an account deleted meanwhile: one answer for all.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Too many failed attempts: refused, unchecked, for this many more seconds (already capped).
    #[error("account locked")]
    Locked { retry_after_secs: u64 },
    /// A login budget (per IP, per account, global) is spent.
    #[error("rate limited")]
    RateLimited(Refusal),
    /// The password was right but the address is not verified (verification required).
    #[error("email not verified")]
    EmailNotVerified,
    /// The password was right and a second factor must follow, with this challenge.
    #[error("second factor required")]
    MfaRequired(SecretString),
    /// An `mfa_token` that is unknown, expired, spent or dead.
    #[error("invalid or expired mfa_token")]
    InvalidChallenge,
    /// A second-factor code that is not right.
    #[error("invalid code")]
    InvalidCode,
    /// A passkey `challenge_id` that is unknown, expired, spent, of another ceremony or of
    /// another user.
    #[error("invalid or expired passkey challenge")]
    PasskeyChallenge,
    /// A passkey credential or assertion that webauthn-rs (or the counter guard) refused, or
    /// that names no passkey we know.
    #[error("passkey refused")]
    PasskeyRefused,
    /// The credential id is registered already (to this or another account).
    #[error("passkey already registered")]
    PasskeyTaken,
    /// The user's role requires a passkey and they have one: a password or TOTP code no longer
    /// signs them in.
    #[error("passkey required")]
    PasskeyRequired,
    /// A passkey second factor asked for by a user who has none.
    #[error("no passkey")]
    NoPasskey,
    /// Not one of the caller's passkeys (or no longer there): the same answer either way.
    #[error("no such passkey")]
    PasskeyNotFound,
    /// The last passkey of a user whose role requires one.
    #[error("last required passkey")]
    LastRequiredPasskey,
    /// Adding or removing a passkey, on a login older than `auth.reauth_window`.
    #[error("a recent sign-in is required")]
    ReauthRequired,
    /// A refresh token that is unknown, expired, spent (reuse) or of an ended login.
    #[error("invalid or expired refresh token")]
    InvalidRefreshToken,
    /// A mailed token (reset, verification) that is unknown, spent or expired.
    #[error("invalid mailed token")]
    InvalidMailedToken,
    /// Registration without verification: the address has an account.
    #[error("email taken")]
    EmailTaken,
    /// TOTP setup or enable while the second factor is on.
    #[error("second factor already enabled")]
    MfaAlreadyEnabled,
    /// TOTP disable while it is off.
    #[error("second factor not enabled")]
    MfaNotEnabled,
    /// TOTP enable without a pending setup.
    #[error("no second-factor setup in progress")]
    NoMfaSetup,
    /// The password asked for a second-factor change is not right.
    #[error("wrong password")]
    WrongPassword,
    /// The password or the code asked for removing the second factor is not right (which one is
    /// not said).
    #[error("wrong password or code")]
    WrongPasswordOrCode,
    /// A signed-in user's current password, asked for a change, is not right.
    #[error("wrong current password")]
    WrongCurrentPassword,
    /// The password changed between the check and the write.
    #[error("password changed meanwhile")]
    PasswordChangedMeanwhile,
    /// Fields that cannot be right, named.
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    #[error("hashing: {0}")]
    Hash(#[from] HashError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Something only the operator can restore (the data key that sealed a TOTP secret is no
    /// longer configured): 503, logged, never shown. Not a wrong code: the user is not to blame,
    /// and no attempt is counted against them.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault below (signing, sealing): logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl AuthError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        AuthError::Invalid(vec![FieldError::new(field, message)])
    }
}
