-- How a login was made, on its `login_success` event (issue 14): `password`, `password+totp`,
-- `password+recovery_code`, `password+passkey` or `passkey` (the names of `SignInMethod`).
-- NULL for every other event, and for logins written before this migration. No CHECK on the
-- names, like `action`: the enum is the only writer, and a new method then needs no table rebuild
-- (which SQLite would need to change a CHECK, and which the append-only triggers forbid).
ALTER TABLE audit_log ADD COLUMN method TEXT;
