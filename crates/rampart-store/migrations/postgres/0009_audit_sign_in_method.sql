-- How a login was made, on its `login_success` event (issue 14): `password`, `password+totp`,
-- `password+recovery_code`, `password+passkey` or `passkey` (the names of `SignInMethod`).
-- NULL for every other event, and for logins written before this migration. No CHECK on the
-- names, like `action`: the enum is the only writer (and SQLite, whose schema this one mirrors,
-- could not change a CHECK without a table rebuild).
-- A nullable column without a default is added without rewriting (or updating) the existing rows,
-- so the append-only triggers do not fire. The runtime role's table-level SELECT and INSERT
-- cover it.
ALTER TABLE audit_log ADD COLUMN method TEXT;
