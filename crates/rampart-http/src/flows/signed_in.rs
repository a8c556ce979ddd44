//! [`SignedIn`]: a user who has just completed a login, and how ([`SignInMethod`]).
//!
//! Only the flows that decide a login make one (its constructor is private to `flows`): the
//! password step, the second factor, and the passkey sign-in. What a login grants (a cookie
//! session or a token login, in [`super::sessions`]) is opened only for a `SignedIn`, so no
//! handler can open a session for a user row it merely looked up, and the `login_success` event
//! always says how the login was made.

use std::ops::Deref;

use rampart_store::{SignInMethod, UserRow};

pub struct SignedIn {
    user: UserRow,
    method: SignInMethod,
}

impl SignedIn {
    pub(super) fn new(user: UserRow, method: SignInMethod) -> Self {
        Self { user, method }
    }

    pub fn user(&self) -> &UserRow {
        &self.user
    }

    pub fn method(&self) -> SignInMethod {
        self.method
    }
}

/// Read as the user it is (handlers and pages show the user, check its roles): the method only
/// matters to the session it opens.
impl Deref for SignedIn {
    type Target = UserRow;

    fn deref(&self) -> &UserRow {
        &self.user
    }
}
