-- The client's User-Agent with each audit event (issue 13: the admin console shows each event's
-- IP, user agent and request id). Bounded to 256 characters by the request context before it is
-- written; attacker-controlled text, escaped wherever it is shown. NULL for events written before
-- this migration and for those without a request (the CLI).
ALTER TABLE audit_log ADD COLUMN user_agent TEXT;
-- The console filters by time: newest first within a range.
CREATE INDEX audit_log_at ON audit_log(at, seq);
