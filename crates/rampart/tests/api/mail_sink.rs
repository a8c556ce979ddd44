//! `MailSink`: a local SMTP server (aiosmtpd, in `smtp_sink.py`) that keeps every message the
//! server sends, so that a test can read the mail a user would get and click its link.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::Builder;

/// How long a test waits for a mail: sending is off the request path, with retries.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(20);

/// The sender address the tests configure.
pub const MAIL_FROM: &str = "Rampart <no-reply@example.com>";

#[derive(Debug, Clone)]
pub struct Message {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The `From` header.
    pub from: String,
    pub subject: String,
    /// The text/plain part.
    pub body: String,
}

impl Message {
    fn from_json(v: &Value) -> Option<Self> {
        let to = v["to"].as_array()?.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect();
        Some(Message {
            to,
            from: v["from"].as_str()?.to_owned(),
            subject: v["subject"].as_str()?.to_owned(),
            body: v["body"].as_str()?.to_owned(),
        })
    }

    pub fn is_to(&self, address: &str) -> bool {
        self.to.iter().any(|t| t.eq_ignore_ascii_case(address))
    }

    /// The one token in the body (see [`token_in`]).
    pub fn token(&self) -> String {
        token_in(&self.body)
    }
}

pub struct MailSink {
    port: u16,
    child: Child,
    messages: Arc<Mutex<Vec<Message>>>,
}

impl MailSink {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A sink on this port (one a server was already told to send to).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(Some(port))
    }

    fn start_with(port: Option<u16>) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(port.map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd is needed for the mail tests (scripts/requirements-test.txt)");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<u16>();
        let out = child.stdout.take().unwrap();
        let kept = Arc::clone(&messages);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()) {
                    let _ = tx.send(port);
                } else if let Some(m) = serde_json::from_str::<Value>(&line).ok().as_ref().and_then(Message::from_json)
                {
                    kept.lock().unwrap().push(m);
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let errors = Arc::new(Mutex::new(String::new()));
        let errors2 = Arc::clone(&errors);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut e = errors2.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the SMTP sink did not start: {}", errors.lock().unwrap());
            }
        };
        MailSink { port, child, messages }
    }

    /// `smtp://127.0.0.1:PORT`, for `mail.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Points a server at this sink.
    pub fn configure(&self, b: Builder) -> Builder {
        b.env("MAIL__SMTP_URL", &self.url()).env("MAIL__FROM", MAIL_FROM)
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    /// The messages received so far for `to` whose subject contains `subject_contains`.
    pub fn matching(&self, to: &str, subject_contains: &str) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.is_to(to) && m.subject.contains(subject_contains)).collect()
    }

    /// Waits for the first message to `to` whose subject contains `subject_contains`.
    pub async fn wait_for(&self, to: &str, subject_contains: &str, timeout: Duration) -> Message {
        let started = Instant::now();
        loop {
            if let Some(m) = self.matching(to, subject_contains).into_iter().next() {
                return m;
            }
            if started.elapsed() > timeout {
                let seen: Vec<(Vec<String>, String)> = self.messages().into_iter().map(|m| (m.to, m.subject)).collect();
                panic!("no mail to {to} with subject containing {subject_contains:?} within {timeout:?}; got {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token in a mail body: the only 43-character word of `[A-Za-z0-9_-]` (256 bits in
/// base64url). The mailed address (`user-` and 32 hex digits) is 37 characters, so cannot be it.
pub fn token_in(body: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut found: Vec<&str> = body.split(|c: char| !word(c)).filter(|w| w.len() == 43).collect();
    found.sort_unstable();
    found.dedup();
    assert_eq!(found.len(), 1, "expected exactly one 43-character token in the mail body:\n{body}");
    found[0].to_owned()
}
