//! Response bodies. Built from store rows field by field, so an internal column (the password
//! hash, failure counters) can only reach a client by being added here on purpose.

use rampart_core::clock::rfc3339;
use rampart_store::UserRow;
use serde::Serialize;

#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub mfa_enabled: bool,
    pub created_at: String,
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            email_verified: u.email_verified,
            roles: u.roles(),
            mfa_enabled: u.mfa_enabled,
            created_at: rfc3339(u.created_at),
        }
    }
}
