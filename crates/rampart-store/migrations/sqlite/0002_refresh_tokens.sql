-- Refresh tokens: one chain per token login (sessions.kind = 'token'); the chain is the family.
-- Only the SHA-256 of each token is stored.
--
-- Single use is enforced by the schema: rotating a token inserts its successor with
-- `parent_hash` = the token, and `parent_hash` is UNIQUE. Of two requests racing with the same
-- token, exactly one insert succeeds, in one statement. A token is "used" when it has a child;
-- the child records when and by which client the rotation happened, so a second use can be told
-- apart (same client within the grace window: a concurrent refresh; else: replay).
CREATE TABLE refresh_tokens (
    token_hash         TEXT PRIMARY KEY NOT NULL,
    session_id         TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    parent_hash        TEXT UNIQUE,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    created_ip         TEXT,
    created_user_agent TEXT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens(session_id);
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);
