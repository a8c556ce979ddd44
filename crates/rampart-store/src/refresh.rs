//! Refresh tokens. The single-use rule is enforced by one conditional UPDATE: of two requests
//! racing with the same token, exactly one sees `rows_affected == 1`.

use rampart_core::clock::Millis;

use crate::{Store, StoreError, UserRow};

/// A refresh token with its login and user, as one row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub token_hash: String,
    pub session_id: String,
    pub token_expires_at: i64,
    pub used_at: Option<i64>,
    pub used_ip: Option<String>,
    pub used_user_agent: Option<String>,
    pub session_expires_at: i64,
    pub session_revoked_at: Option<i64>,
    #[sqlx(flatten)]
    pub user: UserRow,
}

impl Store {
    pub async fn insert_refresh(
        &self,
        token_hash: &str,
        session_id: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn refresh_by_hash(&self, token_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        Ok(sqlx::query_as::<_, RefreshRow>(
            "SELECT r.token_hash, r.session_id, r.expires_at AS token_expires_at, r.used_at, r.used_ip, r.used_user_agent, \
                    s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at, \
                    u.id, u.email, u.email_normalized, u.password_hash, u.display_name, u.roles, u.email_verified, \
                    u.mfa_enabled, u.failed_logins, u.locked_until, u.created_at, u.updated_at \
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id \
             WHERE r.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Rotation in one transaction: marks `old` used by this client and stores its successor.
    /// False (and nothing stored) when another request used `old` first.
    pub async fn rotate_refresh(
        &self,
        old: &str,
        new: &str,
        session_id: &str,
        now: Millis,
        expires_at: Millis,
        client: (&str, Option<&str>),
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2, used_ip = $3, used_user_agent = $4 WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(old)
        .bind(now)
        .bind(client.0)
        .bind(client.1)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new)
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
