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
    pub priority: Priority,
}

/// Which mail gives way when the queue or the budget runs short. Anyone can make Rampart send
/// routine mail (a registration, a login to an unverified account); security mail is what lets
/// an owner back in or tells them about an attack, and must never be crowded out by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Password resets, lockout and change notices: queued apart, sent first, and allowed the
    /// whole budget.
    Security,
    /// Verification links and sign-up notices: dropped (and counted) rather than delayed when
    /// their queue is full or their half of the budget is spent.
    Routine,
}

/// How the mailer was configured.
pub enum Settings<'a> {
    Smtp { url: &'a str, from: &'a str, per_minute: u32 },
    DevLog { per_minute: u32 },
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
    queues: Option<Queues>,
    mode: Mode,
}

/// One queue per [`Priority`], so that a flood of routine mail fills only its own.
#[derive(Clone)]
struct Queues {
    security: mpsc::Sender<Message>,
    routine: mpsc::Sender<Message>,
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
        let (smtp, from, per_minute) = match settings {
            Settings::Off => return Ok(Self { queues: None, mode: Mode::Off }),
            Settings::DevLog { per_minute } => (None, None, per_minute),
            Settings::Smtp { url, from, per_minute } => {
                let from: Mailbox = from.parse().map_err(|_| MailError::From)?;
                (Some(smtp_transport(url)?), Some(from), per_minute)
            }
        };
        let mode = if smtp.is_some() { Mode::Smtp } else { Mode::DevLog };
        let (security, security_rx) = mpsc::channel(QUEUE);
        let (routine, routine_rx) = mpsc::channel(QUEUE);
        let budget = Budget::new(per_minute);
        tokio::spawn(run(security_rx, routine_rx, budget, smtp.zip(from)));
        Ok(Self { queues: Some(Queues { security, routine }), mode })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Queues a message. Never waits and never fails the caller.
    pub fn send(&self, message: Message) {
        let Some(queues) = &self.queues else {
            tracing::warn!(subject = %message.subject, "mail is not configured: message dropped");
            dropped(message.priority);
            return;
        };
        let (queue, priority) = match message.priority {
            Priority::Security => (&queues.security, Priority::Security),
            Priority::Routine => (&queues.routine, Priority::Routine),
        };
        if queue.try_send(message).is_err() {
            tracing::error!(?priority, "mail queue is full: message dropped");
            dropped(priority);
        }
    }
}

fn dropped(priority: Priority) {
    let priority = match priority {
        Priority::Security => "security",
        Priority::Routine => "routine",
    };
    metrics::counter!("rampart_mail_total", "outcome" => "dropped", "priority" => priority).increment(1);
}

/// The deployment-wide brake on outgoing mail, per instance: `per_minute` messages a minute,
/// refilled continuously. Routine mail may only use the upper half, so that security mail always
/// finds the lower half; security mail that finds the budget empty waits for it instead of
/// being dropped.
struct Budget {
    per_minute: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Budget {
    fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self { per_minute, tokens: per_minute, at: tokio::time::Instant::now() }
    }

    fn refill(&mut self) {
        let now = tokio::time::Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * self.per_minute / 60.0;
        self.tokens = (self.tokens + earned).min(self.per_minute);
        self.at = now;
    }

    /// Takes one token for a message of `priority`, waiting for one (security) or refusing
    /// (routine) when the budget is short.
    async fn take(&mut self, priority: Priority) -> bool {
        self.refill();
        match priority {
            Priority::Routine if self.tokens < self.per_minute / 2.0 + 1.0 => false,
            Priority::Routine => {
                self.tokens -= 1.0;
                true
            }
            Priority::Security => {
                while self.tokens < 1.0 {
                    let wait = (1.0 - self.tokens) * 60.0 / self.per_minute;
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                    self.refill();
                }
                self.tokens -= 1.0;
                true
            }
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

async fn run(
    mut security: mpsc::Receiver<Message>,
    mut routine: mpsc::Receiver<Message>,
    mut budget: Budget,
    smtp: Option<Smtp>,
) {
    let smtp = smtp.map(Arc::new);
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        // Security mail first, whenever there is any.
        let m = tokio::select! {
            biased;
            Some(m) = security.recv() => m,
            Some(m) = routine.recv() => m,
            else => return,
        };
        if !budget.take(m.priority).await {
            tracing::warn!(subject = %m.subject, "mail budget spent: routine message dropped");
            dropped(m.priority);
            continue;
        }
        let Some(smtp) = &smtp else {
            // Typed fields: the JSON formatter escapes them, so nothing in a body can forge a line.
            tracing::info!(dev = true, to = %m.to, subject = %m.subject, body = %m.body, "dev_mail");
            continue;
        };
        let (smtp, slots) = (Arc::clone(smtp), Arc::clone(&slots));
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
