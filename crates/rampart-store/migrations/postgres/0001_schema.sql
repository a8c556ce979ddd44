-- The whole schema for PostgreSQL: the same tables, columns and constraints as the SQLite
-- migrations 0001-0005 (read those for the reasons), in this dialect. Public ids are random
-- UUIDv4 text; times are Unix milliseconds (BIGINT).

CREATE TABLE users (
    id               TEXT PRIMARY KEY NOT NULL,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    display_name     TEXT,
    roles            TEXT NOT NULL DEFAULT 'user',
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled      BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins    BIGINT NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX users_created_at_id ON users(created_at, id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
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
CREATE INDEX sessions_revoked_at ON sessions(revoked_at);

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

CREATE TABLE audit_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

-- Append-only, whoever asks (the runtime role is not even granted UPDATE, DELETE or TRUNCATE;
-- these triggers stop the owner too, short of dropping them in a migration).
CREATE FUNCTION rampart_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION rampart_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION rampart_audit_log_append_only();

CREATE TABLE rampart_resources (
    resource TEXT PRIMARY KEY NOT NULL,
    owner    TEXT
);
CREATE TABLE rampart_resource_fields (
    resource TEXT NOT NULL,
    field    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    optional BOOLEAN NOT NULL,
    PRIMARY KEY (resource, field)
);

CREATE TABLE totp_secrets (
    user_id     TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_enc  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    enabled_at  BIGINT,
    last_step   BIGINT
);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_challenges (
    token_hash      TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    flow            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    used_at         BIGINT
);
CREATE INDEX mfa_challenges_user_id ON mfa_challenges(user_id);

CREATE TABLE account_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX account_tokens_user_id ON account_tokens(user_id, purpose);
