//! Argon2id on a dedicated, bounded pool of OS threads.
//!
//! Why a pool of our own rather than `spawn_blocking`: a hash costs tens of milliseconds of pure
//! CPU. Tokio's blocking pool grows to hundreds of threads, so a login flood would get hundreds of
//! hashes running at once and starve every other request. Here at most `workers` hashes run, at
//! most `queue` wait, and past that a caller is told `Busy` at once (the HTTP layer answers 503
//! with `Retry-After`) instead of queueing without end.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing capacity is exhausted")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right. `rehash` says the stored hash used weaker parameters (or another
    /// algorithm) than configured now, so the caller should store a fresh hash.
    Match {
        rehash: bool,
    },
    Mismatch,
}

enum Job {
    Hash { password: SecretString, reply: oneshot::Sender<Result<String, HashError>> },
    Verify { password: SecretString, phc: Option<String>, reply: oneshot::Sender<Result<Verdict, HashError>> },
}

#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Job>,
    workers: usize,
}

struct Worker {
    argon2: Argon2<'static>,
    params: HashParams,
    /// A hash of a random password with the configured parameters. An unknown email is checked
    /// against it so that it costs exactly what a wrong password costs.
    dummy: String,
}

impl Hasher {
    /// Starts `workers` hashing threads with room for `queue` waiting jobs.
    pub fn start(params: HashParams, workers: usize, queue: usize) -> Result<Self, HashError> {
        let workers = workers.max(1);
        let argon2 = argon2_for(params)?;
        let dummy_pw = crate::token::generate().0;
        let dummy = hash_with(&argon2, &dummy_pw)?;
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers {
            let worker = Worker { argon2: argon2.clone(), params, dummy: dummy.clone() };
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("rampart-hash-{n}"))
                .spawn(move || worker.run(&rx))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Self { inner: Arc::new(Inner { tx, workers }) })
    }

    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.await.map_err(|_| HashError::Failed("hashing worker stopped".into()))?
    }

    /// Checks `password` against a stored PHC string, or against the dummy hash when there is no
    /// account (`None`): same work, always `Mismatch`.
    pub async fn verify(&self, password: SecretString, phc: Option<String>) -> Result<Verdict, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify { password, phc, reply })?;
        rx.await.map_err(|_| HashError::Failed("hashing worker stopped".into()))?
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.inner.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Failed("hashing pool stopped".into()),
        })
    }
}

impl Worker {
    fn run(self, rx: &Mutex<Receiver<Job>>) {
        loop {
            let job = match rx.lock() {
                Ok(guard) => guard.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            match job {
                Job::Hash { password, reply } => {
                    let _ = reply.send(hash_with(&self.argon2, &password));
                }
                Job::Verify { password, phc, reply } => {
                    let _ = reply.send(Ok(self.verify(&password, phc.as_deref())));
                }
            }
        }
    }

    fn verify(&self, password: &SecretString, phc: Option<&str>) -> Verdict {
        let Some(phc) = phc else {
            let _ = self.check(password, &self.dummy);
            return Verdict::Mismatch;
        };
        if self.check(password, phc) {
            Verdict::Match { rehash: weaker_than(phc, self.params) }
        } else {
            Verdict::Mismatch
        }
    }

    fn check(&self, password: &SecretString, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            // The parameters are taken from the stored string, so old hashes still verify.
            Ok(parsed) => self.argon2.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok(),
            Err(_) => {
                // A corrupt stored hash must not be faster to reject than a real one.
                let _ = self.argon2.verify_password(password.expose_secret().as_bytes(), &dummy_parsed(&self.dummy));
                false
            }
        }
    }
}

fn dummy_parsed(dummy: &str) -> PasswordHash<'_> {
    // The dummy was produced by us at start-up; parsing cannot fail, but no panic either way.
    PasswordHash::new(dummy).unwrap_or_else(|_| PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: None,
        params: Default::default(),
        salt: None,
        hash: None,
    })
}

pub fn argon2_for(p: HashParams) -> Result<Argon2<'static>, HashError> {
    let params =
        Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_with(argon2: &Argon2<'_>, password: &SecretString) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// True when `phc` is not Argon2id v1.3 or used less memory or fewer iterations than `now`.
pub fn weaker_than(phc: &str, now: HashParams) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version != Some(0x13) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => p.m_cost() < now.memory_kib || p.t_cost() < now.iterations,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: HashParams = HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 };

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::start(SMALL, 1, 4).unwrap();
        let phc = h.hash(pw("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(!phc.contains("correct horse"));
        assert_eq!(h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap(), Verdict::Match { rehash: false });
        assert_eq!(h.verify(pw("wrong horse"), Some(phc)).await.unwrap(), Verdict::Mismatch);
        assert_eq!(h.verify(pw("anything"), None).await.unwrap(), Verdict::Mismatch);
        assert_eq!(h.verify(pw("anything"), Some("garbage".into())).await.unwrap(), Verdict::Mismatch);
    }

    #[tokio::test]
    async fn weaker_stored_params_ask_for_rehash() {
        let old = Hasher::start(SMALL, 1, 4).unwrap();
        let phc = old.hash(pw("correct horse")).await.unwrap();
        let stronger = HashParams { memory_kib: 2048, iterations: 2, parallelism: 1 };
        let new = Hasher::start(stronger, 1, 4).unwrap();
        assert_eq!(new.verify(pw("correct horse"), Some(phc)).await.unwrap(), Verdict::Match { rehash: true });
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let slow = HashParams { memory_kib: 8192, iterations: 4, parallelism: 1 };
        let h = Hasher::start(slow, 1, 1).unwrap();
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(pw("x")).await })
            })
            .collect();
        let mut busy = 0;
        for j in jobs {
            if matches!(j.await.unwrap(), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "a one-slot queue took eight jobs");
    }
}
