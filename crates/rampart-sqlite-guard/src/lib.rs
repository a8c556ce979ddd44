//! Least privilege for SQLite, which has no GRANT: an authorizer callback
//! (`sqlite3_set_authorizer`) installed on every runtime connection. SQLite asks it about each
//! action while compiling a statement, so a refused statement never runs. Refused at runtime:
//!
//! - any DDL: CREATE / DROP / ALTER of tables, indexes, triggers, views and virtual tables (the
//!   schema, including the audit log's append-only triggers, belongs to the migration connection);
//! - ATTACH and DETACH (no other database files);
//! - UPDATE and DELETE on `audit_log` (append-only), and any write to the schema bookkeeping
//!   tables (`_sqlx_migrations`, `rampart_resources`, `rampart_resource_fields`);
//! - setting a PRAGMA (reading one is allowed), and the file-touching functions.
//!
//! Migrations run on a separate connection without this authorizer.
//!
//! What the authorizer cannot see: `REPLACE INTO` / `INSERT OR REPLACE` is reported as an INSERT,
//! yet deletes the row it conflicts with. The store turns on `recursive_triggers` on every runtime
//! connection before installing this (see `rampart-store`'s `db::sqlite_conns`), so that such a
//! deletion fires the audit log's append-only delete trigger; the refused pragma write then keeps
//! it on.

use std::ffi::{CStr, c_char, c_int, c_void};

use libsqlite3_sys as ffi;

/// Tables the runtime may read and insert into but never change or remove rows of.
const APPEND_ONLY: &[&str] = &["audit_log"];
/// Tables only migrations write.
const MIGRATION_ONLY: &[&str] =
    &["_sqlx_migrations", "rampart_resources", "rampart_resource_fields", "sqlite_master", "sqlite_schema"];
/// SQL functions a runtime statement may not call.
const FORBIDDEN_FUNCTIONS: &[&str] = &["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"];

/// The verdict for one action; pure, so it is unit-tested without SQLite.
pub fn decide(action: c_int, arg1: Option<&str>, arg2: Option<&str>) -> c_int {
    let deny = ffi::SQLITE_DENY;
    match action {
        ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_DROP_TEMP_INDEX
        | ffi::SQLITE_DROP_TEMP_TABLE
        | ffi::SQLITE_DROP_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TEMP_VIEW
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_ALTER_TABLE
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_VTABLE
        | ffi::SQLITE_ATTACH
        | ffi::SQLITE_DETACH => deny,
        ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE if arg1.is_some_and(|t| APPEND_ONLY.contains(&t)) => deny,
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE
            if arg1.is_some_and(|t| MIGRATION_ONLY.contains(&t)) =>
        {
            deny
        }
        // arg1 is the pragma, arg2 its new value: reading is fine, setting is not.
        ffi::SQLITE_PRAGMA if arg2.is_some() => deny,
        ffi::SQLITE_FUNCTION if arg2.is_some_and(|f| FORBIDDEN_FUNCTIONS.iter().any(|x| f.eq_ignore_ascii_case(x))) => {
            deny
        }
        _ => ffi::SQLITE_OK,
    }
}

/// Installs the authorizer on a connection. Safe to call: the locked handle guarantees a live
/// connection that nothing else uses during the call.
pub fn install(handle: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> Result<(), String> {
    let db = handle.as_raw_handle();
    // SAFETY: `db` is a valid, open connection owned by sqlx and exclusively locked by `handle`
    // for this call. The callback is a plain function with no user data (null pointer), so no
    // pointer is kept that could outlive anything.
    #[allow(unsafe_code)]
    let rc = unsafe { ffi::sqlite3_set_authorizer(db.as_ptr(), Some(authorize), std::ptr::null_mut()) };
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(format!("sqlite3_set_authorizer failed with code {rc}")) }
}

/// Installs the authorizer on a rusqlite connection (the store's inline record readers). Safe to
/// call: `conn` is borrowed, so it is open and used by nothing else during the call.
pub fn install_on(conn: &rusqlite::Connection) -> Result<(), String> {
    // SAFETY: `handle()` returns the live sqlite3 pointer of `conn`, which outlives this call. The
    // pointer is used for this one call and not kept; the callback has no user data (null), as
    // in `install`.
    #[allow(unsafe_code)]
    let rc = unsafe { ffi::sqlite3_set_authorizer(conn.handle(), Some(authorize), std::ptr::null_mut()) };
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(format!("sqlite3_set_authorizer failed with code {rc}")) }
}

/// # Safety
/// Called by SQLite only, with NUL-terminated strings or null pointers that are valid for the
/// duration of the call.
#[allow(unsafe_code)]
unsafe extern "C" fn authorize(
    _user: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes either null or a valid C string that lives through this call.
    let text = |p: *const c_char| if p.is_null() { None } else { unsafe { CStr::from_ptr(p) }.to_str().ok() };
    decide(action, text(arg1), text(arg2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(decide(ffi::SQLITE_DROP_TABLE, Some("users"), None), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_ALTER_TABLE, Some("main"), Some("users")), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_DELETE, Some("audit_log"), None), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_UPDATE, Some("audit_log"), Some("action")), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_INSERT, Some("audit_log"), None), ffi::SQLITE_OK);
        assert_eq!(decide(ffi::SQLITE_DELETE, Some("sessions"), None), ffi::SQLITE_OK);
        assert_eq!(decide(ffi::SQLITE_PRAGMA, Some("foreign_keys"), Some("OFF")), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_PRAGMA, Some("table_info"), None), ffi::SQLITE_OK);
        assert_eq!(decide(ffi::SQLITE_FUNCTION, None, Some("load_extension")), ffi::SQLITE_DENY);
        assert_eq!(decide(ffi::SQLITE_SELECT, None, None), ffi::SQLITE_OK);
        assert_eq!(decide(ffi::SQLITE_INSERT, Some("rampart_resources"), None), ffi::SQLITE_DENY);
    }
}
