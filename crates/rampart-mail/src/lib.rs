//! Outgoing mail, through the durable outbox in the database.
//!
//! A flow never sends mail: it queues it, in the same transaction as the event that causes it
//! (`rampart_store`'s `mail_outbox`), and then calls [`Mailer::wake`]. A request never waits for
//! an SMTP server, a mail failure never becomes a 5xx (nor, for `forgot`, a timing difference
//! between a known and an unknown address), and a crash loses no mail: the worker of any instance
//! finds the row and sends it. See `worker` for the claim, the retries and the budget.
//!
//! Bodies are sealed before they are queued ([`Mailer::seal`], AES-256-GCM under the data key,
//! the recipient as associated data): a reset or verification link carries a live token, and the
//! outbox row that holds it until it is sent must not put that token in the database, its WAL or
//! a backup in clear. The worker opens the body just before sending; a body that does not open
//! (another deployment's key, a row copied onto another recipient) is given up.
//!
//! Three modes: SMTP through lettre (`smtp://` plain, `smtp://...?tls=required` STARTTLS,
//! `smtps://` implicit TLS, credentials in the URL); the dev profile's log, where each message is
//! one `dev_mail` event (tokens included: that is its purpose, and production never uses it);
//! and off, where queued messages are dropped with a warning that names no token.

mod budget;
pub mod templates;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use rampart_core::auth::data_key::DataKey;
use tokio::sync::Notify;

pub use rampart_store::MailPriority as Priority;
/// One plain-text message, as the templates make it and the outbox keeps it.
pub use rampart_store::OutgoingMail as Message;
pub use worker::retry_delay;

/// How the mailer was configured.
pub enum Settings<'a> {
    Smtp { url: &'a str, from: &'a str },
    DevLog,
    Off,
}

/// What the worker may do, whatever the transport.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `mail.max_per_minute`: messages this instance sends a minute at most (half of it is kept
    /// for security mail).
    pub per_minute: u32,
    /// `mail.give_up_after`: a mail still failing this long after it was queued is given up.
    pub give_up_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail.smtp_url is not a usable SMTP URL: {0}")]
    Url(String),
    #[error("mail.from is not a valid mailbox (e.g. \"App <no-reply@example.com>\")")]
    From,
    /// Sealing needs the system's random source; it names nothing of the message.
    #[error("a mail body could not be sealed: {0}")]
    Seal(String),
}

const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The handle flows hold: which mode, and how to wake this instance's worker after a commit that
/// queued mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    mode: Mode,
    wake: Arc<Notify>,
    key: Arc<DataKey>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Smtp,
    DevLog,
    Off,
}

/// How the worker delivers a claimed message.
pub(crate) enum Transport {
    Smtp(Box<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>),
    DevLog,
    Off,
}

impl Mailer {
    /// Builds the transport and starts this instance's outbox worker (needs a Tokio runtime).
    /// Configuration errors are reported here, at start-up, not at the first send.
    pub fn start(
        settings: Settings<'_>,
        store: rampart_store::Store,
        policy: Policy,
        key: Arc<DataKey>,
    ) -> Result<Self, MailError> {
        let (transport, mode) = match settings {
            Settings::Off => (Transport::Off, Mode::Off),
            Settings::DevLog => (Transport::DevLog, Mode::DevLog),
            Settings::Smtp { url, from } => {
                let from: Mailbox = from.parse().map_err(|_| MailError::From)?;
                (Transport::Smtp(Box::new((smtp_transport(url)?, from))), Mode::Smtp)
            }
        };
        let wake = Arc::new(Notify::new());
        tokio::spawn(worker::run(store, transport, policy, Arc::clone(&wake), Arc::clone(&key)));
        Ok(Self { mode, wake, key })
    }

    /// The message with its body sealed, ready to queue (see the module docs).
    pub fn seal(&self, message: Message) -> Result<Message, MailError> {
        seal(&self.key, message)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Tells this instance's worker that a mail was just committed, so that it goes out now
    /// rather than at the next poll. Never waits and never fails.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| MailError::Url(e.to_string()))?
        .timeout(Some(SMTP_TIMEOUT))
        .build())
}

/// What binds a sealed body to its row: the recipient, so that a body copied onto a row addressed
/// to someone else does not open.
fn associated(to: &str) -> String {
    format!("mail_outbox:{to}")
}

/// Seals a message's body under the current data key (for a command that queues mail without a
/// running [`Mailer`], such as `rampart user mfa-reset`).
pub fn seal(key: &DataKey, message: Message) -> Result<Message, MailError> {
    let body =
        key.seal(message.body.as_bytes(), &associated(&message.to)).map_err(|e| MailError::Seal(e.to_string()))?;
    Ok(Message { body, ..message })
}

/// The body of a claimed message, opened; `None` when it does not open.
pub(crate) fn open(key: &DataKey, to: &str, sealed: &str) -> Option<String> {
    key.open(sealed, &associated(to)).ok().and_then(|b| String::from_utf8(b).ok())
}
