-- The account lifecycle: TOTP enrolment, recovery codes, logins waiting for their second factor,
-- and the single-use tokens mailed for password reset and email verification.
-- Nothing here is stored in a form that can be used as is: the TOTP secret is sealed with the
-- data key (AES-256-GCM, bound to the user id), every other secret is a SHA-256 of a 256-bit or
-- 80-bit random value.

CREATE TABLE totp_secrets (
    user_id     TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_enc  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- NULL while set up but not yet confirmed with a code.
    enabled_at  BIGINT,
    -- The last time step (Unix time / 30) whose code was accepted: a code is accepted only for a
    -- later step, so each code works once (RFC 6238 section 5.2).
    last_step   BIGINT
);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A login (cookie or token grant) whose password was right and that now waits for a code.
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

-- Mailed tokens: `purpose` is 'password_reset' or 'email_verify'.
CREATE TABLE account_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX account_tokens_user_id ON account_tokens(user_id, purpose);
