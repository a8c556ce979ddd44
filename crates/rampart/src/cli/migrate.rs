//! `rampart migrate`: apply schema migrations with the migration credentials.

use std::path::Path;

use rampart_store::{Store, StoreOptions};

use crate::Failure;

pub async fn run(path: Option<&Path>) -> Result<(), Failure> {
    let c = super::load_checked(path)?.settings;
    let url = c.database.migrate_url.as_ref().unwrap_or(&c.database.url);
    let opts = StoreOptions { url: url.expose(), ..super::store_options(&c) };
    Store::migrate(&opts, &c.resources, super::runtime_role(&c).as_deref())
        .await
        .map_err(|e| Failure::runtime(format!("database {}: migration failed: {e}", url.redacted())))?;
    println!("migrations applied to {}", url.redacted());
    Ok(())
}
