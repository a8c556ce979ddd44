//! [`SignedIn`]: a user who has just completed a login, and how ([`SignInMethod`]).
//!
//! Only the flows that decide a login make one (its constructor is private to `flows`): the
//! password step, the second factor, and the passkey sign-in. What a login grants (a cookie
//! session or a token login, in [`super::sessions`]) is opened only for a `SignedIn`, so no
//! handler can open a session for a user row it merely looked up, and the `login_success` event
//! always says how the login was made. A `SignedIn` is made only by
//! [`super::attempt::Attempt::proven`], from the attempt that the lockout reserved: dropped
//! unopened, that attempt stays counted as a failure, the safe side.

use std::ops::Deref;

use rampart_core::clock::Millis;
use rampart_store::{SignInMethod, UserRow};

#[must_use]
pub struct SignedIn {
    user: UserRow,
    method: SignInMethod,
    /// The lock the login's own attempt set by reaching the threshold: opening the login lifts
    /// it again (and only it).
    own_lock: Option<Millis>,
}

impl SignedIn {
    pub(super) fn new(user: UserRow, method: SignInMethod, own_lock: Option<Millis>) -> Self {
        Self { user, method, own_lock }
    }

    pub(super) fn own_lock(&self) -> Option<Millis> {
        self.own_lock
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
