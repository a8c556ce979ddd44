-- API keys and service accounts (issue 15).
--
-- `users.kind`: 'person' (signs in with a password) or 'service' (a service account: no password
-- anyone knows, no email, never signs in; it acts only through API keys an admin made for it).
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'service'));

-- A key is `rpk_` + its id (the UUID below, without hyphens) + `_` + 256 random bits (base64url).
-- Only the SHA-256 of the whole key is stored: the secret has 256 bits of entropy, so a fast hash
-- leaves nothing to brute-force, and a request's key is found by its id (the primary key) in one
-- indexed lookup, then compared by hash in constant time.
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL,
    -- After a rotation: the hash of the key it replaced, accepted until `previous_until`.
    previous_hash  TEXT,
    previous_until BIGINT,
    -- Space-separated roles the key may use (a subset of its owner's at creation); at each request
    -- they are intersected with the owner's current roles.
    roles          TEXT NOT NULL,
    -- JSON `[{"resource": .., "actions": [..]}]`; NULL: every declared resource and verb (still
    -- only what the roles and ownership allow).
    scopes         TEXT,
    -- Who made it: the owner, or the admin who made it for a service account.
    created_by     TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    -- Written at most once a minute per key, not on every request.
    last_used_at   BIGINT,
    last_used_ip   TEXT
);
CREATE INDEX api_keys_user_id ON api_keys(user_id, created_at);
