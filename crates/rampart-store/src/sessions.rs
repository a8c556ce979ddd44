//! Logins. A cookie session is found by the SHA-256 of its value; the value is never stored.

use rampart_core::clock::Millis;

use crate::dialect::WriteTx;
use crate::refresh::{Client, NewRefresh};
use crate::{NewAuditEvent, SignInMethod, Store, StoreError, UserRow};

statements! {
    INSERT_SESSION = "INSERT INTO sessions \
         (id, token_hash, user_id, kind, created_at, last_seen_at, expires_at, ip, user_agent) \
         VALUES ($1, $2, $3, $8, $4, $4, $5, $6, $7)";
    SELECT_SESSION_BY_HASH = concat!(
        "SELECT s.id AS session_id, s.created_at AS session_created_at, s.last_seen_at AS session_last_seen_at, \
                s.expires_at AS session_expires_at, ",
        user_columns!("u."),
        " FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL"
    );
    TOUCH_SESSION = "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    REVOKE_SESSION = "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";
    SELECT_LOGIN_LIVE = "SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL";
    SELECT_REVOKED_SINCE = "SELECT id, revoked_at FROM sessions WHERE revoked_at > $1";
    PURGE_SESSIONS = "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $2";
    SELECT_SESSIONS_OF_USER = "SELECT id, kind, created_at, last_seen_at, ip, user_agent FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
           AND (kind = 'token' OR last_seen_at > $3) \
         ORDER BY created_at DESC, id LIMIT $4";
    REVOKE_LOGINS_OF_USER = "UPDATE sessions SET revoked_at = $2 \
         WHERE user_id = $1 AND revoked_at IS NULL AND (CAST($3 AS TEXT) IS NULL OR id <> $3) \
         RETURNING id, kind";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A browser session: found by the hash of its cookie value.
    Cookie,
    /// A token login (`POST /auth/token`): its id is the `sid` of its access tokens, and its
    /// refresh tokens live in `refresh_tokens`.
    Token,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Token => "token",
        }
    }
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub kind: SessionKind,
    /// The cookie value's hash (cookie sessions only).
    pub token_hash: Option<&'a str>,
    pub user_id: &'a str,
    pub now: Millis,
    pub expires_at: Millis,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A login to open (see [`Store::open_login`]).
pub struct NewLogin<'a> {
    pub session: &'a NewSession<'a>,
    /// The lock the login's own attempt set by reaching the threshold (a right secret lifts
    /// exactly that lock, never another).
    pub own_lock: Option<Millis>,
    /// The first refresh token of a token login.
    pub refresh: Option<FirstRefresh<'a>>,
    /// How the login was made, for its `login_success` event.
    pub method: SignInMethod,
}

/// The first refresh token of a token login.
pub struct FirstRefresh<'a> {
    pub token_hash: &'a str,
    pub expires_at: Millis,
    pub client: Client<'a>,
}

/// What [`Store::open_login`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOpened {
    Opened,
    /// Locked until then by something other than this login's own attempt: nothing written.
    Locked(Millis),
    /// The user no longer exists: nothing written.
    Gone,
}

/// A live (not revoked) session and its user, as one row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionAuth {
    pub session_id: String,
    pub session_created_at: i64,
    pub session_last_seen_at: i64,
    pub session_expires_at: i64,
    #[sqlx(flatten)]
    pub user: UserRow,
}

impl Store {
    /// Opens a login whose every factor is proven, as one transaction (one commit on SQLite's
    /// single writer instead of three or four): the failure count reset (re-checking the lock
    /// in the same statement, so a lock set meanwhile by a concurrent attempt or an admin still
    /// wins), the login row, its first refresh token (token logins), and the `login_success`
    /// audit event. Nothing is written unless all of it is.
    pub async fn open_login(&self, login: &NewLogin<'_>, audit: &NewAuditEvent<'_>) -> Result<LoginOpened, StoreError> {
        let s = login.session;
        self.forget_user(s.user_id);
        let mut tx = self.begin_write().await?;
        match tx.record_login_success(s.user_id, s.now, login.own_lock).await? {
            None => {
                tx.rollback().await?;
                return Ok(LoginOpened::Gone);
            }
            Some(Some(until)) if until > s.now => {
                tx.rollback().await?;
                return Ok(LoginOpened::Locked(until));
            }
            Some(_) => {}
        }
        tx.insert_session(s).await?;
        if let Some(r) = &login.refresh {
            let row = NewRefresh {
                token_hash: r.token_hash,
                session_id: s.id,
                parent_hash: None,
                now: s.now,
                expires_at: r.expires_at,
                client: r.client,
            };
            tx.insert_refresh(&row).await?;
        }
        tx.append_audit(audit, Some(login.method)).await?;
        tx.commit().await?;
        Ok(LoginOpened::Opened)
    }

    /// The session with this token hash, with its user, unless revoked. Timeouts are the
    /// caller's to judge (it knows the configured idle limit).
    pub async fn session_by_hash(&self, token_hash: &str) -> Result<Option<SessionAuth>, StoreError> {
        let row = on_read!(self, |db| {
            sqlx::query_as::<_, SessionAuth>(SELECT_SESSION_BY_HASH).bind(token_hash).fetch_optional(db).await
        })?;
        Ok(row)
    }

    pub async fn touch_session(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        on_write!(self, |db| {
            sqlx::query(TOUCH_SESSION).bind(now).bind(id).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Revokes one login (cookie session or token login) of one user. False when there was no
    /// such live login.
    pub async fn revoke_session(&self, id: &str, user_id: &str, now: Millis) -> Result<bool, StoreError> {
        let done = on_write!(self, |db| {
            sqlx::query(REVOKE_SESSION).bind(now).bind(id).bind(user_id).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Whether a login exists and is not revoked: the revocation check's source of truth when the
    /// shared revocation set does not answer.
    pub async fn login_live(&self, id: &str) -> Result<bool, StoreError> {
        let found =
            on_read!(self, |db| sqlx::query_scalar::<_, i32>(SELECT_LOGIN_LIVE).bind(id).fetch_optional(db).await)?;
        Ok(found.is_some())
    }

    /// Logins revoked since `since`, to rebuild the in-memory revocation set at start-up.
    pub async fn revoked_since(&self, since: Millis) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, (String, i64)>(SELECT_REVOKED_SINCE).bind(since).fetch_all(db).await
        })?;
        Ok(rows)
    }

    /// Deletes sessions that can no longer be used (expired or revoked a day ago), so the table
    /// does not grow without end.
    pub async fn purge_sessions(&self, now: Millis) -> Result<u64, StoreError> {
        let day = 86_400_000;
        let done = on_write!(self, |db| {
            sqlx::query(PURGE_SESSIONS).bind(now).bind(now - day).execute(db).await.map(|r| r.rows_affected())
        })?;
        Ok(done)
    }
}

/// One live login as its owner sees it in `GET /auth/sessions`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub kind: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The most logins `GET /auth/sessions` lists (newest first).
pub const SESSION_LIST_MAX: i64 = 200;

impl Store {
    /// The user's live logins: not revoked, not past their absolute limit, and (cookie sessions)
    /// not idle for `idle_ms` or more. Scoped by `user_id` in the statement.
    pub async fn list_sessions(
        &self,
        user_id: &str,
        now: Millis,
        idle_ms: Millis,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let rows = on_read!(self, |db| {
            sqlx::query_as::<_, SessionRow>(SELECT_SESSIONS_OF_USER)
                .bind(user_id)
                .bind(now)
                .bind(now - idle_ms)
                .bind(SESSION_LIST_MAX)
                .fetch_all(db)
                .await
        })?;
        Ok(rows)
    }
}

impl WriteTx<'_> {
    async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StoreError> {
        in_tx!(self, |conn| {
            sqlx::query(INSERT_SESSION)
                .bind(s.id)
                .bind(s.token_hash)
                .bind(s.user_id)
                .bind(s.now)
                .bind(s.expires_at)
                .bind(s.ip)
                .bind(s.user_agent)
                .bind(s.kind.as_str())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Marks every live login of the user revoked, but `except` (the caller's own, when it
    /// stays); returns the ids of the token logins among them, for the revocation set (cookie
    /// sessions are read from the database on every request and need nothing more).
    pub(crate) async fn revoke_logins(
        &mut self,
        user_id: &str,
        except: Option<&str>,
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        let rows = in_tx!(self, |conn| {
            sqlx::query_as::<_, (String, String)>(REVOKE_LOGINS_OF_USER)
                .bind(user_id)
                .bind(now)
                .bind(except)
                .fetch_all(conn)
                .await
        })?;
        Ok(rows.into_iter().filter(|(_, kind)| kind == "token").map(|(id, _)| id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_db::{TempPostgres, TempSqlite, options};
    use crate::{AttemptKey, AuditEvent, AuditFilter, AuditOutcome, LockChange, LockRule, NewUser, Reservation};
    use crate::{UserChange, admin::LOCKED_INDEFINITELY};

    const NOW: Millis = 1_000_000;

    fn rule(threshold: u32) -> LockRule {
        LockRule { threshold, now: NOW, lock_until: NOW + 60_000 }
    }

    async fn add(store: &Store, email: &str) -> String {
        let id = rampart_core::opaque_token::new_id();
        let u = NewUser { id: &id, email, email_normalized: email, password_hash: "x", roles: &["user"], now: 1 };
        store.insert_user(&u).await.unwrap();
        id
    }

    /// Opens a login of `user` with the lock its attempt set; what happened, and how many login
    /// rows and `login_success` events the user has afterwards.
    async fn open(
        store: &Store,
        user: &str,
        own_lock: Option<Millis>,
        refresh: Option<&str>,
    ) -> (LoginOpened, usize, usize) {
        let id = rampart_core::opaque_token::new_id();
        let session = NewSession {
            id: &id,
            kind: SessionKind::Token,
            token_hash: None,
            user_id: user,
            now: NOW,
            expires_at: NOW + 3_600_000,
            ip: Some("127.0.0.1"),
            user_agent: None,
        };
        let refresh = refresh.map(|token_hash| FirstRefresh {
            token_hash,
            expires_at: NOW + 60_000,
            client: ("127.0.0.1", None),
        });
        let audit = NewAuditEvent {
            action: AuditEvent::LoginSuccess,
            actor_id: Some(user),
            target: Some(&id),
            ip: Some("127.0.0.1"),
            request_id: None,
            user_agent: None,
            outcome: AuditOutcome::Success,
            now: NOW,
        };
        let opened = store
            .open_login(&NewLogin { session: &session, own_lock, refresh, method: SignInMethod::Password }, &audit)
            .await
            .unwrap();
        let logins = store.list_sessions(user, NOW, 1_000).await.unwrap().len();
        let filter =
            AuditFilter { before: None, actor: Some(user), action: Some("login_success"), since: None, until: None };
        let events = store.audit_page(&filter, 10).await.unwrap().len();
        (opened, logins, events)
    }

    async fn a_login_opens_in_one_transaction_or_not_at_all(url: &str) {
        let store = Store::connect(&options(url)).await.unwrap();

        // Two failed attempts, then a right one: the count is reset with the login, its first
        // refresh token and its audit event.
        let ann = add(&store, "ann@example.com").await;
        for _ in 0..3 {
            let granted = store.reserve_attempt(AttemptKey::User(&ann), rule(5)).await.unwrap();
            assert_eq!(granted, Reservation::Granted { lock: None });
        }
        assert_eq!(open(&store, &ann, None, Some("refresh-of-ann")).await, (LoginOpened::Opened, 1, 1));
        assert_eq!(store.user_by_id(&ann).await.unwrap().unwrap().failed_logins, 0);
        assert!(store.refresh_by_hash("refresh-of-ann").await.unwrap().is_some());

        // The attempt that set the lock (threshold 1) lifts its own lock when it proves right.
        let bob = add(&store, "bob@example.com").await;
        let Reservation::Granted { lock: Some(own) } =
            store.reserve_attempt(AttemptKey::User(&bob), rule(1)).await.unwrap()
        else {
            panic!("the first failure at threshold 1 did not lock");
        };
        assert_eq!(open(&store, &bob, Some(own), None).await, (LoginOpened::Opened, 1, 1));
        assert_eq!(store.user_by_id(&bob).await.unwrap().unwrap().locked_until, None);

        // Locked meanwhile by an admin (not by this attempt): refused, and nothing is written,
        // neither the login, its refresh token, its audit event nor the count's reset.
        let cat = add(&store, "cat@example.com").await;
        assert_eq!(
            store.reserve_attempt(AttemptKey::User(&cat), rule(5)).await.unwrap(),
            Reservation::Granted { lock: None }
        );
        let lock = UserChange { roles: None, lock: LockChange::Lock };
        store.admin_update_user(&cat, &lock, NOW).await.unwrap();
        assert_eq!(
            open(&store, &cat, None, Some("refresh-of-cat")).await,
            (LoginOpened::Locked(LOCKED_INDEFINITELY), 0, 0)
        );
        assert!(store.refresh_by_hash("refresh-of-cat").await.unwrap().is_none());
        assert_eq!(store.user_by_id(&cat).await.unwrap().unwrap().failed_logins, 1);

        // Deleted meanwhile: nothing is written.
        let gone = rampart_core::opaque_token::new_id();
        assert_eq!(open(&store, &gone, None, None).await, (LoginOpened::Gone, 0, 0));
        store.close().await;
    }

    #[tokio::test]
    async fn a_login_opens_in_one_transaction_or_not_at_all_on_sqlite() {
        let db = TempSqlite::migrated().await;
        a_login_opens_in_one_transaction_or_not_at_all(&db.url).await;
    }

    #[tokio::test]
    async fn a_login_opens_in_one_transaction_or_not_at_all_on_postgres() {
        let Some(db) = TempPostgres::migrated("a_login_opens_in_one_transaction_or_not_at_all").await else { return };
        a_login_opens_in_one_transaction_or_not_at_all(&db.url).await;
        db.remove().await;
    }
}
