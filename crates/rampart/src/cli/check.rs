//! `rampart check`: every problem of the config, each with a fix.

use std::path::Path;

use rampart_core::config::{self, Level, Profile};

use crate::Failure;

pub async fn run(path: Option<&Path>) -> Result<(), Failure> {
    let loaded = config::load(path, std::env::vars()).map_err(|e| Failure::config(e.to_string()))?;
    let mut problems = config::check(&loaded);
    if !problems.iter().any(|p| p.level == Level::Error) {
        problems.extend(super::database_problems(&loaded.config).await);
    }
    for p in &problems {
        println!("{p}");
    }
    let errors = problems.iter().filter(|p| p.level == Level::Error).count();
    let warnings = problems.len() - errors;
    let profile = match loaded.config.profile {
        Profile::Dev => "dev",
        Profile::Production => "production",
    };
    if let Some(first) = problems.iter().find(|p| p.level == Level::Error) {
        return Err(Failure::config(format!(
            "config refused ({profile} profile, {errors} error(s), {warnings} warning(s)); first: {first}"
        )));
    }
    println!("ok: {profile} profile, {} resource(s), {warnings} warning(s)", loaded.config.resources.len());
    Ok(())
}
