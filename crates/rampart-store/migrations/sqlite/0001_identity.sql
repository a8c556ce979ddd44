-- Identity: users, their logins (cookie sessions and, later, token logins), the audit log.
-- Public ids are random UUIDv4 text; times are Unix milliseconds (BIGINT) in every dialect.

CREATE TABLE users (
    id               TEXT PRIMARY KEY NOT NULL,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    display_name     TEXT,
    -- Space-separated role names (validated identifiers), always including "user".
    roles            TEXT NOT NULL DEFAULT 'user',
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled      BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins    BIGINT NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the opaque cookie value; the value itself is never stored.
    token_hash   TEXT UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user_id ON sessions(user_id);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    at         BIGINT NOT NULL,
    action     TEXT NOT NULL,
    actor_id   TEXT,
    target     TEXT,
    ip         TEXT,
    request_id TEXT,
    outcome    TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log(action, seq);
CREATE INDEX audit_log_actor ON audit_log(actor_id, seq);

-- Append-only: rows can be added, never changed or removed, whoever asks.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
