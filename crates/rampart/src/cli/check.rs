//! `rampart check`: every problem of the config, each with a fix.

use std::path::Path;

use rampart_core::config::{self, Level, Profile};

use crate::Failure;

pub async fn run(path: Option<&Path>) -> Result<(), Failure> {
    let loaded = config::load(path, std::env::vars()).map_err(|e| Failure::config(e.to_string()))?;
    let checked = config::check(loaded);
    let profile = match checked.profile {
        Profile::Dev => "dev",
        Profile::Production => "production",
    };
    let mut problems = checked.problems.clone();
    // What only the database can tell, once the config itself is sound.
    let resources = match checked.accept(|_| false) {
        Ok(accepted) => {
            problems.extend(super::database_problems(&accepted.settings).await);
            problems.extend(tls_problem(&accepted.settings));
            accepted.settings.resources.len()
        }
        Err(_) => 0,
    };
    for p in &problems {
        println!("{p}");
    }
    let errors = problems.iter().filter(|p| p.level == Level::Error).count();
    let warnings = problems.len() - errors;
    if let Some(first) = problems.iter().find(|p| p.level == Level::Error) {
        return Err(Failure::config(format!(
            "config refused ({profile} profile, {errors} error(s), {warnings} warning(s)); first: {first}"
        )));
    }
    println!("ok: {profile} profile, {resources} resource(s), {warnings} warning(s)");
    Ok(())
}

/// The TLS certificate and key as `serve` would load them: readable, PEM, and belonging together.
fn tls_problem(c: &config::Settings) -> Option<config::Problem> {
    let files = c.server.tls.as_ref()?;
    let e = rampart_http::tls::Certificates::load(&files.cert, &files.key).err()?;
    Some(config::Problem {
        level: Level::Error,
        key: e.key().into(),
        message: e.to_string(),
        fix: "point tls_cert_file at the PEM chain (leaf first) and tls_key_file at its private key, both readable by the service".into(),
    })
}
