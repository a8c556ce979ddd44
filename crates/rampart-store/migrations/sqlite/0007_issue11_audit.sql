-- How many occurrences one audit row stands for. Repeated `authz_denied` events of one actor on
-- one target are folded into one row per window (rampart-http's `denial_audit`), so that a flood
-- of denials cannot grow this append-only table without bound; every other event is one row, 1.
ALTER TABLE audit_log ADD COLUMN count BIGINT NOT NULL DEFAULT 1 CHECK (count >= 1);
