//! The authentication flows, below HTTP.
//!
//! Every way in (the JSON API today; pages and passkeys next) reaches the same login,
//! session and account logic here. A flow takes parsed input and the client it serves (a
//! [`RequestContext`](crate::extract::RequestContext): address, user agent, request id), makes its
//! decisions, writes the audit events next to them, and returns a typed outcome: success, or an
//! [`AuthError`]. Handlers parse, call and respond; `AuthError` becomes a response in one place
//! (`impl From<AuthError> for ApiError` in `crate::error`).
//!
//! Where a login is decided, in order: [`budget`] (the login budgets), [`attempt`] (the lockout
//! reservation taken before any secret is checked), [`password_login`] (the password step and
//! what must follow it), [`second_factor`] (completing a login that asked for a code), then
//! [`sessions`] opens what the login grants (a cookie session or a token login, and refresh
//! rotation) for a [`signed_in::SignedIn`], which only these flows make and which says how the
//! login was made. [`passkeys`] holds the WebAuthn ceremonies (a passkey as the first factor, or as the
//! second), and [`own_passkeys`] a user's own list (rename, remove). [`registration`], [`recovery`]
//! (reset and verification by mailed token),
//! [`reauth`] (a signed-in user's current password) and [`mailing`] (the mailed tokens) complete
//! the set. [`admin_users`] holds what an admin does to a user, for the JSON admin API and the
//! console alike. [`api_keys`] issues API keys and turns a presented one into the rights it has
//! for one request (never more than its owner has now).

pub mod account;
pub mod admin_users;
pub mod api_keys;
pub mod attempt;
pub mod budget;
pub mod mailing;
mod outcome;
pub mod own_passkeys;
pub mod passkeys;
pub mod password_login;
pub mod reauth;
pub mod recovery;
pub mod registration;
pub mod second_factor;
pub mod service_accounts;
pub mod sessions;
pub mod signed_in;
pub mod totp;

pub use outcome::AuthError;
pub use signed_in::SignedIn;
