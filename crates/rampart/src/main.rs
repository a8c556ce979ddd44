//! `rampart`: one binary for the server and its operator commands.
//!
//! Exit codes (docs/configuration.md): 0 ok, 1 runtime failure, 2 usage or configuration error. Errors are
//! one line on stderr, without a backtrace.

mod cli;
mod revocation_feed;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc (issue 17; why, and its one option: `rampart_allocator`).
#[global_allocator]
static ALLOCATOR: rampart_allocator::MiMalloc = rampart_allocator::MiMalloc;

#[derive(Parser)]
#[command(name = "rampart", version, about = "A secure-by-default identity and data API server")]
struct Cli {
    /// Config file (default: ./rampart.toml if it exists, else the built-in dev profile).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations with the migration credentials (database.migrate_url).
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the JWT signing keys in auth.keys_dir.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a consistent copy of the SQLite database (mode 0600) while the server runs. On
    /// PostgreSQL, says how to use pg_dump.
    Backup {
        /// The backup file; it must not exist.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the SQLite database with a backup, checked first; the server must be stopped. On
    /// PostgreSQL, says how to use pg_restore.
    Restore {
        /// A file written by `rampart backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Manage the data-encryption key (RAMPART_DATA_KEY).
    DataKey {
        #[command(subcommand)]
        command: DataKeyCommand,
    },
    /// Validate the configuration and resource policies; list every problem with a fix.
    Check,
}

#[derive(Subcommand)]
enum DataKeyCommand {
    /// Re-encrypt every sealed secret to the current data key, in resumable batches (run with
    /// the replaced key as RAMPART_DATA_KEY_PREVIOUS; safe beside running servers).
    Rotate,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new signing key (PKCS#8 PEM, mode 0600) with a new kid.
    Generate,
    /// Write a new signing key and remove keys whose every token has expired.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from the terminal without echo, or from stdin when it
    /// is not a terminal; never from the command line.
    Create {
        #[arg(long)]
        email: String,
        /// Extra role besides `user` (e.g. admin).
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove every second factor of a user (TOTP, recovery codes), as the admin API does:
    /// audited `mfa_reset`, the owner mailed.
    MfaReset {
        #[arg(long)]
        email: String,
    },
}

/// A failure with its exit code. The message is one line.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn config(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }
    pub fn runtime(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

fn main() -> ExitCode {
    // Before any thread starts: the allocator's options are not synchronized.
    rampart_allocator::configure();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let config = cli.config.as_deref();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => cli::serve::run(config).await,
            Command::Migrate => cli::migrate::run(config).await,
            Command::User { command: UserCommand::Create { email, role } } => {
                cli::user::create(config, &email, role.as_deref()).await
            }
            Command::User { command: UserCommand::MfaReset { email } } => cli::user::mfa_reset(config, &email).await,
            Command::Keys { command: KeysCommand::Generate } => cli::keys::generate(config),
            Command::Keys { command: KeysCommand::Rotate } => cli::keys::rotate(config),
            Command::Backup { to } => cli::backup::backup(config, &to).await,
            Command::Restore { from } => cli::backup::restore(config, &from).await,
            Command::DataKey { command: DataKeyCommand::Rotate } => cli::data_key::rotate(config).await,
            Command::Check => cli::check::run(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rampart: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
