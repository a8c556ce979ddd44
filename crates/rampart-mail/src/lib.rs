//! Outgoing mail, off the request path.
//!
//! A handler calls [`Mailer::send`], which only queues the message and returns: a request never
//! waits for an SMTP server, and a mail failure never becomes a 5xx for the user (nor, for
//! `forgot`, a timing difference between a known and an unknown address). Each queued message is
//! sent by a background task, retried with back-off, and logged when it finally fails.
//!
//! Three modes: SMTP through lettre (`smtp://` plain, `smtp://...?tls=required` STARTTLS,
//! `smtps://` implicit TLS, credentials in the URL); the dev profile's log, where each message is
//! one `dev_mail` event (tokens included: that is its purpose, and production never uses it);
//! and off, where messages are dropped with a warning that names no token.

pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{Semaphore, mpsc};

/// One plain-text message.
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// How the mailer was configured.
pub enum Settings<'a> {
    Smtp { url: &'a str, from: &'a str },
    DevLog,
    Off,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail.smtp_url is not a usable SMTP URL: {0}")]
    Url(String),
    #[error("mail.from is not a valid mailbox (e.g. \"App <no-reply@example.com>\")")]
    From,
    /// The message could not be built or the server refused it; lettre's words name the
    /// server's reply, never the message or the credentials.
    #[error("mail could not be sent: {0}")]
    Send(String),
}

/// Queued messages beyond this are dropped (and logged): the queue is memory, and the routes
/// that fill it are rate limited far below it.
const QUEUE: usize = 1024;
/// SMTP conversations at once.
const CONCURRENCY: usize = 4;
/// First try, then retries after 2, 4, 8 and 16 s.
const ATTEMPTS: u32 = 5;
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Mailer {
    tx: Option<mpsc::Sender<Message>>,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Smtp,
    DevLog,
    Off,
}

impl Mailer {
    /// Builds the transport and starts the sending task (needs a Tokio runtime). Configuration
    /// errors are reported here, at start-up, not at the first send.
    pub fn start(settings: Settings<'_>) -> Result<Self, MailError> {
        let (smtp, from) = match settings {
            Settings::Off => return Ok(Self { tx: None, mode: Mode::Off }),
            Settings::DevLog => (None, None),
            Settings::Smtp { url, from } => {
                let from: Mailbox = from.parse().map_err(|_| MailError::From)?;
                (Some(smtp_transport(url)?), Some(from))
            }
        };
        let mode = if smtp.is_some() { Mode::Smtp } else { Mode::DevLog };
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, smtp.zip(from)));
        Ok(Self { tx: Some(tx), mode })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Queues a message. Never waits and never fails the caller.
    pub fn send(&self, message: Message) {
        let Some(tx) = &self.tx else {
            tracing::warn!(subject = %message.subject, "mail is not configured: message dropped");
            metrics::counter!("rampart_mail_total", "outcome" => "dropped").increment(1);
            return;
        };
        if tx.try_send(message).is_err() {
            tracing::error!("mail queue is full: message dropped");
            metrics::counter!("rampart_mail_total", "outcome" => "dropped").increment(1);
        }
    }
}

/// Sends one message over SMTP now and waits for the server's answer, for a command that exits
/// right after (a message queued by [`Mailer::send`] would die with the process). One attempt:
/// the caller reports a failure.
pub async fn send_once(url: &str, from: &str, message: &Message) -> Result<(), MailError> {
    let from: Mailbox = from.parse().map_err(|_| MailError::From)?;
    let email = build(&from, message).map_err(MailError::Send)?;
    smtp_transport(url)?.send(email).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string()))
}

fn smtp_transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| MailError::Url(e.to_string()))?
        .timeout(Some(SMTP_TIMEOUT))
        .build())
}

type Smtp = (AsyncSmtpTransport<Tokio1Executor>, Mailbox);

async fn run(mut rx: mpsc::Receiver<Message>, smtp: Option<Smtp>) {
    let Some((transport, from)) = smtp else {
        while let Some(m) = rx.recv().await {
            // Typed fields: the JSON formatter escapes them, so nothing in a body can forge a line.
            tracing::info!(dev = true, to = %m.to, subject = %m.subject, body = %m.body, "dev_mail");
        }
        return;
    };
    let smtp = Arc::new((transport, from));
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(m) = rx.recv().await {
        let (smtp, slots) = (Arc::clone(&smtp), Arc::clone(&slots));
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else { return };
            deliver(&smtp, m).await;
        });
    }
}

async fn deliver((transport, from): &Smtp, m: Message) {
    let email = match build(from, &m) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(subject = %m.subject, error = %e, "mail could not be built: dropped");
            return;
        }
    };
    let mut wait = Duration::from_secs(2);
    for attempt in 1..=ATTEMPTS {
        match transport.send(email.clone()).await {
            Ok(_) => {
                tracing::info!(subject = %m.subject, attempt, "mail sent");
                metrics::counter!("rampart_mail_total", "outcome" => "sent").increment(1);
                return;
            }
            // lettre's errors name the server's reply, never the message or the credentials.
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(subject = %m.subject, attempt, error = %e, "mail send failed; will retry");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(subject = %m.subject, attempt, error = %e, "mail send failed; giving up");
                metrics::counter!("rampart_mail_total", "outcome" => "failed").increment(1);
            }
        }
    }
}

fn build(from: &Mailbox, m: &Message) -> Result<lettre::Message, String> {
    let to: Mailbox = m.to.parse().map_err(|e: lettre::address::AddressError| e.to_string())?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| e.to_string())
}
