-- Refresh tokens: one chain per token login (sessions.kind = 'token'); the chain is the family.
-- Only the SHA-256 of each token is stored. A token is single use: `used_at` is set, atomically,
-- by the request that rotates it, together with the client that did, so that a second use can be
-- told apart (same client within the grace window: concurrent refresh; else: replay).
CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    used_ip         TEXT,
    used_user_agent TEXT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);
