-- Failed-login counting that cannot be raced and that forgets alike for every email.
--
-- `users.last_failed_at`: when the last failed attempt was counted. A count older than the idle
-- window is forgotten by the statement that counts the next one, so a dormant account's counter
-- behaves exactly like an unknown email's (otherwise, after a day, two attempts would tell a real
-- account, still at its old count, from an unknown one).
--
-- `unknown_login_failures`: the same counter for emails that have no account, so that they lock
-- by the same rule (a 423 must not tell whether an account exists). It is durable, shared by
-- every instance through the database, and keyed by SHA-256 of the normalized email: the table
-- never holds the addresses people mistyped.
ALTER TABLE users ADD COLUMN last_failed_at BIGINT;

CREATE TABLE unknown_login_failures (
    email_hash     TEXT PRIMARY KEY NOT NULL,
    failed_logins  BIGINT NOT NULL,
    locked_until   BIGINT,
    last_failed_at BIGINT NOT NULL
);
CREATE INDEX unknown_login_failures_last_failed_at ON unknown_login_failures(last_failed_at);
