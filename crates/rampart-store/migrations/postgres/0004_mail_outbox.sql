-- The durable mail outbox (issue 16, item 3; the SQLite twin is 0008_mail_outbox.sql).
--
-- A mail is inserted in the same transaction as the event that causes it (a reset token, a
-- password change, a second factor added or removed), so a mail exists exactly when its event
-- committed, and a crash loses neither. A worker in each instance claims due rows for a lease
-- (`claimed_until`, `claimed_by`): a row is sent by one instance at a time, and the claims of an
-- instance that died expire and are taken again.
--
-- `body` holds the message, which for a reset or verification mail is a link carrying a live
-- secret token, so it is sealed with the data key (AES-256-GCM, the recipient as associated data)
-- before it is inserted. It is kept only while the mail is pending: marking a row sent, given up
-- or dropped erases it (`body = ''`), and the housekeeping task deletes finished rows later.
--
-- `priority`: 0 security mail, 1 routine mail (claimed after security mail, and dropped rather
-- than delayed when the instance's budget is short).
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    priority        BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    claimed_by      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT
);
-- What the workers look for: pending rows in priority order, oldest due first.
CREATE INDEX mail_outbox_pending ON mail_outbox(priority, next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_created_at ON mail_outbox(created_at);
