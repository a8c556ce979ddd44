-- Passkeys (WebAuthn credentials) and the ceremonies that are under way.
--
-- `passkeys.credential` is webauthn-rs's serialized `Passkey`: the credential id, the public key,
-- the signature counter and the backup flags (no secret: a public key). The counter and backup
-- flags are also columns, so that the statement that records a use can refuse a counter that went
-- backwards (a cloned authenticator) even when two uses race. A credential id belongs to one
-- account only: the unique index refuses the second registration, whoever makes it.
CREATE TABLE passkeys (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id  TEXT NOT NULL,
    name           TEXT NOT NULL,
    credential     TEXT NOT NULL,
    sign_count     BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backed_up      BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT
);
CREATE UNIQUE INDEX passkeys_credential_id ON passkeys(credential_id);
CREATE INDEX passkeys_user_id ON passkeys(user_id);

-- A ceremony started and not yet finished: found by the SHA-256 of its random `challenge_id`,
-- bound to its `kind` ('register', 'login', 'mfa') and, for 'register' and 'mfa', to its user
-- (and for 'mfa' to the login waiting behind the mfa_token). `state` is webauthn-rs's serialized
-- ceremony state (the challenge it must see signed). Finishing deletes the row in the same
-- statement that reads it: single use, whichever instance finishes.
CREATE TABLE passkey_challenges (
    id_hash         TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    mfa_token_hash  TEXT,
    name            TEXT,
    state           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges(expires_at);
CREATE INDEX passkey_challenges_user_id ON passkey_challenges(user_id);
