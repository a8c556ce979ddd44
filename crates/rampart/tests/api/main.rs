//! Black-box tests: the real `rampart` binary on port 0 with a fresh SQLite file in a temp dir,
//! driven over HTTP. One test binary; `helpers::TestApp` is the front door.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod helpers;
mod mail_sink;
mod raw_http;
mod soft_authenticator;

mod admin;
mod api_cache_control;
mod api_keys;
mod audit;
mod auth_flow;
mod browser;
mod cli;
mod client_ip;
mod config_lints;
mod cors;
mod csrf;
mod cursors;
mod data_key;
mod denials;
mod deploy;
mod email_verification;
mod enumeration;
mod hashing;
mod headers;
mod input;
mod limits;
mod lockout;
mod logs;
mod metrics;
mod mfa;
mod mfa_changes;
mod openapi;
mod ops;
mod outbox;
mod passkey_recovery;
mod passkeys;
mod password;
mod readiness;
mod registration;
mod resources;
mod route_policy;
mod scale;
mod sessions;
mod tls;
mod tls_clients;
mod tokens;
mod ui;
mod ui_account;
mod ui_admin;
mod ui_passkeys;
