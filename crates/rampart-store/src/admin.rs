//! What the admin API reads and writes: the user list, role changes, locks, deletion.
//!
//! The last-admin rule is part of each writing statement, never a count read before the write: an
//! `UPDATE` / `DELETE` whose `WHERE` also says "unless this would leave no admin who can sign in".
//! Two admins demoting each other at the same moment therefore cannot both succeed: SQLite runs
//! the statements one after the other on the single writer connection, and the second one sees the
//! first one's result. On PostgreSQL, where both `EXISTS` checks could pass under READ COMMITTED,
//! admin writes first take a transaction-scoped advisory lock (see `WriteTx::serialize_admin_writes`).
//!
//! "An admin who can sign in" (an *active* admin) has the role `admin` and is not locked now. A
//! locked admin does not count, so the last usable admin cannot delete themselves and leave only
//! a locked one behind.

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::{Store, StoreError, UserRow};

/// `locked_until` of an account an admin locked: 9999-12-31T23:59:59Z, the last instant RFC 3339
/// can write. Kept in the same column as the automatic lockout so that every login path that
/// refuses a locked account (`locked_until > now`) refuses this one too, with no second check to
/// forget.
pub const LOCKED_INDEFINITELY: Millis = 253_402_300_799_000;

/// What a PATCH does to the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    Keep,
    /// Locked until [`LOCKED_INDEFINITELY`].
    Lock,
    /// `locked_until` and `failed_logins` cleared (also ends an automatic lockout).
    Unlock,
}

impl LockChange {
    fn as_str(self) -> &'static str {
        match self {
            LockChange::Keep => "keep",
            LockChange::Lock => "lock",
            LockChange::Unlock => "unlock",
        }
    }
}

pub struct UserChange<'a> {
    /// The complete new role list (already validated), or `None` to leave roles alone.
    pub roles: Option<&'a [String]>,
    pub lock: LockChange,
}

/// The result of an admin write.
#[derive(Debug)]
pub enum AdminWrite<T> {
    Done(T),
    NotFound,
    /// Refused: it would leave no active admin.
    LastAdmin,
}

#[derive(Debug)]
pub struct Changed {
    pub user: UserRow,
    /// Ids of the token logins that were revoked: their access tokens must go to the revocation
    /// set (cookie sessions are checked against the database on every request and need nothing).
    pub revoked_token_logins: Vec<String>,
}

/// Where a page of users starts: after this `(created_at, id)`.
pub type UserCursor<'a> = (Millis, &'a str);

/// The row being written is an active admin at `$now` (a placeholder such as `"$5"`). The role
/// test pads with spaces so that `admin` matches the whole name only (not `sysadmin`).
macro_rules! target_active_admin {
    ($now:literal) => {
        concat!("((' ' || roles || ' ') LIKE '% admin %' AND (locked_until IS NULL OR locked_until <= ", $now, "))")
    };
}

/// Some user other than `$id` is an active admin at `$now` (placeholders).
macro_rules! another_active_admin {
    ($id:literal, $now:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM users o WHERE o.id <> ",
            $id,
            " AND (' ' || o.roles || ' ') LIKE '% admin %' AND (o.locked_until IS NULL OR o.locked_until <= ",
            $now,
            "))"
        )
    };
}

statements! {
    /// With `$1`, only the user whose normalized email is exactly that; with `$5`, those whose
    /// normalized email is LIKE that pattern (built by [`EmailMatch`], wildcards escaped).
    SELECT_USERS_PAGE = concat!(
        "SELECT ",
        user_columns!(""),
        " FROM users \
         WHERE (CAST($1 AS TEXT) IS NULL OR email_normalized = $1) \
           AND (CAST($5 AS TEXT) IS NULL OR email_normalized LIKE $5 ESCAPE '!') \
           AND (CAST($2 AS BIGINT) IS NULL OR created_at > $2 OR (created_at = $2 AND id > $3)) \
         ORDER BY created_at, id LIMIT $4"
    );
    /// For the console to show the last-admin rule before anyone runs into it; the writes still
    /// decide in their own statements.
    COUNT_ACTIVE_ADMINS = concat!("SELECT COUNT(*) FROM users WHERE ", target_active_admin!("$1"));
    /// The guard, in words: allowed unless the target is an active admin now, will not be one
    /// afterwards (demoted, or locked), and no other active admin exists.
    ADMIN_UPDATE_USER = concat!(
        "UPDATE users SET \
             roles = COALESCE($2, roles), \
             locked_until = CASE $3 WHEN 'lock' THEN $4 WHEN 'unlock' THEN NULL ELSE locked_until END, \
             failed_logins = CASE $3 WHEN 'unlock' THEN 0 ELSE failed_logins END, \
             updated_at = $5 \
         WHERE id = $1 AND ( \
             NOT ",
        target_active_admin!("$5"),
        " OR ((' ' || COALESCE($2, roles) || ' ') LIKE '% admin %' AND $3 <> 'lock') \
             OR ",
        another_active_admin!("$1", "$5"),
        ") RETURNING ",
        user_columns!("")
    );
    ADMIN_DELETE_USER = concat!(
        "DELETE FROM users WHERE id = $1 AND (NOT ",
        target_active_admin!("$2"),
        " OR ",
        another_active_admin!("$1", "$2"),
        ")"
    );
    USER_EXISTS = "SELECT 1 FROM users WHERE id = $1";
    /// The key is Rampart's own: other advisory locks in the database do not collide with it.
    LOCK_ADMIN_WRITES [Postgres] = "SELECT pg_advisory_xact_lock(7263157)";
}

/// Which users a page of the list holds, by email.
#[derive(Debug, Clone, Copy)]
pub enum EmailMatch<'a> {
    Any,
    /// The user whose normalized email is exactly this (0 or 1 rows): the JSON API's `email`.
    Exact(&'a str),
    /// Users whose normalized email contains this text, taken literally (`%` and `_` match
    /// themselves): the console's search box. Lower-cased here, as normalized emails are.
    Contains(&'a str),
}

impl EmailMatch<'_> {
    fn exact(self) -> Option<String> {
        match self {
            EmailMatch::Exact(e) => Some(e.to_owned()),
            _ => None,
        }
    }

    /// A LIKE pattern whose only wildcards are the two it adds; `!` is the escape character
    /// (a backslash would mean different things to the two dialects' string literals).
    fn pattern(self) -> Option<String> {
        let EmailMatch::Contains(text) = self else { return None };
        let mut p = String::from("%");
        for c in text.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '!') {
                p.push('!');
            }
            p.push(c);
        }
        p.push('%');
        Some(p)
    }
}

impl Store {
    /// Users in creation order (`created_at`, then `id`), after `after`, at most `limit`, those
    /// whose email matches `email`.
    pub async fn list_users(
        &self,
        after: Option<UserCursor<'_>>,
        email: EmailMatch<'_>,
        limit: u32,
    ) -> Result<Vec<UserRow>, StoreError> {
        let (exact, pattern) = (email.exact(), email.pattern());
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, UserRow>(SELECT_USERS_PAGE)
                .bind(exact.as_deref())
                .bind(after.map(|a| a.0))
                .bind(after.map(|a| a.1))
                .bind(i64::from(limit))
                .bind(pattern.as_deref())
                .fetch_all(db)
                .await
        })?;
        Ok(rows)
    }

    /// How many admins can sign in now (role `admin`, not locked). Shown by the console next to
    /// the actions the last-admin rule refuses; the rule itself is in each write's statement.
    pub async fn count_active_admins(&self, now: Millis) -> Result<i64, StoreError> {
        let n = on_read!(self, |db| sqlx::query_scalar::<_, i64>(COUNT_ACTIVE_ADMINS).bind(now).fetch_one(db).await)?;
        Ok(n)
    }

    /// Changes roles and/or the lock of one user, refusing to leave no active admin, and revokes
    /// every login of the user when the roles are set or the account is locked: old tokens carry
    /// the old roles in their claims, and a locked account must not keep working through them.
    ///
    /// One transaction on the writer: the guarded `UPDATE` and the revocation of the sessions
    /// commit together or not at all.
    pub async fn admin_update_user(
        &self,
        id: &str,
        change: &UserChange<'_>,
        now: Millis,
    ) -> Result<AdminWrite<Changed>, StoreError> {
        let roles = change.roles.map(|r| r.join(" "));
        let mut tx = self.begin_write().await?;
        tx.serialize_admin_writes().await?;
        let updated = in_tx!(&mut tx, |conn| {
            sqlx::query_as::<_, UserRow>(ADMIN_UPDATE_USER)
                .bind(id)
                .bind(roles.as_deref())
                .bind(change.lock.as_str())
                .bind(LOCKED_INDEFINITELY)
                .bind(now)
                .fetch_optional(conn)
                .await
        })?;
        let Some(user) = updated else {
            let why = tx.refusal(id).await?;
            tx.rollback().await?;
            return Ok(why);
        };
        let revoke = change.roles.is_some() || change.lock == LockChange::Lock;
        let revoked_token_logins = if revoke { tx.revoke_logins(id, None, now).await? } else { Vec::new() };
        tx.commit().await?;
        // After the commit: a read between an earlier forget and the commit could have cached
        // the old row again.
        self.forget_user(id);
        Ok(AdminWrite::Done(Changed { user, revoked_token_logins }))
    }

    /// Deletes a user unless they are the last active admin. Their sessions and refresh tokens go
    /// with them (foreign keys cascade); the ids of their token logins are returned for the
    /// revocation set, since those rows are gone once the transaction commits.
    pub async fn admin_delete_user(&self, id: &str, now: Millis) -> Result<AdminWrite<Vec<String>>, StoreError> {
        let mut tx = self.begin_write().await?;
        tx.serialize_admin_writes().await?;
        // Revoking first takes the write lock, so no login of this user can be added between the
        // read of its ids and the delete. Rolled back with the delete if that is refused.
        let sids = tx.revoke_logins(id, None, now).await?;
        let deleted = in_tx!(&mut tx, |conn| {
            sqlx::query(ADMIN_DELETE_USER).bind(id).bind(now).execute(conn).await.map(|r| r.rows_affected())
        })?;
        if deleted == 0 {
            let why = tx.refusal(id).await?;
            tx.rollback().await?;
            return Ok(why);
        }
        tx.commit().await?;
        self.forget_user(id);
        Ok(AdminWrite::Done(sids))
    }
}

impl Store {
    /// Ends every login of a user (cookie sessions and token logins alike), as
    /// `DELETE /admin/users/{id}/sessions` does: `None` when there is no such user, else the ids
    /// of the token logins ended, for the revocation set.
    pub async fn admin_end_logins(&self, id: &str, now: Millis) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists =
            in_tx!(&mut tx, |conn| sqlx::query_scalar::<_, i32>(USER_EXISTS).bind(id).fetch_optional(conn).await)?;
        if exists.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let sids = tx.revoke_logins(id, None, now).await?;
        tx.commit().await?;
        Ok(Some(sids))
    }
}

impl WriteTx<'_> {
    /// The last-admin guard is a statement reading other rows than the one it writes. SQLite
    /// runs writes one after the other on its single writer connection; under PostgreSQL's READ
    /// COMMITTED two such statements could both see the other admin still there, so admin writes
    /// take one transaction-scoped advisory lock first and run one at a time (they are rare).
    async fn serialize_admin_writes(&mut self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(_) => {}
            WriteTx::Postgres(tx) => {
                sqlx::query(LOCK_ADMIN_WRITES).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Why a guarded write touched no row: the user does not exist, or the guard refused. Read
    /// in the same transaction, so it describes the state the write saw; it only picks the
    /// answer (404 or 409), the decision was the statement's.
    async fn refusal<T>(&mut self, id: &str) -> Result<AdminWrite<T>, StoreError> {
        let exists =
            in_tx!(self, |conn| sqlx::query_scalar::<_, i32>(USER_EXISTS).bind(id).fetch_optional(conn).await)?;
        Ok(if exists.is_some() { AdminWrite::LastAdmin } else { AdminWrite::NotFound })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewUser;
    use crate::test_db::{TempSqlite, options};

    #[test]
    fn contains_patterns_escape_every_wildcard() {
        assert_eq!(EmailMatch::Contains("A_b%c!").pattern().as_deref(), Some("%a!_b!%c!!%"));
        assert_eq!(EmailMatch::Exact("a@b.c").pattern(), None);
        assert_eq!(EmailMatch::Any.exact(), None);
    }

    async fn add(store: &Store, email: &str, roles: &[&str], now: Millis) -> String {
        let id = rampart_core::opaque_token::new_id();
        let u = NewUser { id: &id, email, email_normalized: email, password_hash: "x", roles, now };
        store.insert_user(&u).await.unwrap();
        id
    }

    #[tokio::test]
    async fn search_pages_and_counts_active_admins() {
        let db = TempSqlite::migrated().await;
        let store = Store::connect(&options(&db.url)).await.unwrap();
        let a = add(&store, "ann@example.com", &["user", "admin"], 1).await;
        add(&store, "a_b@example.com", &["user"], 2).await;
        add(&store, "axb@example.com", &["user"], 3).await;
        add(&store, "bob@other.org", &["user", "admin"], 4).await;
        let emails = |rows: Vec<UserRow>| rows.into_iter().map(|u| u.email).collect::<Vec<_>>();
        let found = store.list_users(None, EmailMatch::Contains("EXAMPLE"), 10).await.unwrap();
        assert_eq!(emails(found), ["ann@example.com", "a_b@example.com", "axb@example.com"]);
        // `_` is a literal underscore, not "any one character".
        let found = store.list_users(None, EmailMatch::Contains("a_b"), 10).await.unwrap();
        assert_eq!(emails(found), ["a_b@example.com"]);
        let found = store.list_users(None, EmailMatch::Contains("%"), 10).await.unwrap();
        assert!(found.is_empty());
        // Paging goes on after the last row shown.
        let first = store.list_users(None, EmailMatch::Contains("example"), 2).await.unwrap();
        let last = first.last().unwrap();
        let rest =
            store.list_users(Some((last.created_at, &last.id)), EmailMatch::Contains("example"), 2).await.unwrap();
        assert_eq!(emails(rest), ["axb@example.com"]);
        let exact = store.list_users(None, EmailMatch::Exact("ann@example.com"), 10).await.unwrap();
        assert_eq!(exact.len(), 1);

        assert_eq!(store.count_active_admins(10).await.unwrap(), 2);
        let lock = UserChange { roles: None, lock: LockChange::Lock };
        assert!(matches!(store.admin_update_user(&a, &lock, 10).await.unwrap(), AdminWrite::Done(_)));
        assert_eq!(store.count_active_admins(10).await.unwrap(), 1);
        store.close().await;
    }
}
