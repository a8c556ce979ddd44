//! Argon2id on a dedicated, bounded pool of OS threads.
//!
//! Why a pool of our own rather than `spawn_blocking`: a hash costs tens of milliseconds of pure
//! CPU. Tokio's blocking pool grows to hundreds of threads, so a login flood would get hundreds of
//! hashes running at once and starve every other request. Here at most `workers` hashes run, at
//! most `queue` wait, and past that a caller is told `Busy` at once (the HTTP layer answers 503
//! with `Retry-After`) instead of queueing without end.
//!
//! Two more things keep a flood of logins from hurting everything else:
//!
//! - The hashing threads run at a lower OS priority than the request threads (see
//!   [`lower_priority`]): when the machine is saturated, the scheduler serves requests that need
//!   no hash first, and logins absorb the wait.
//! - Argon2 memory (`memory_kib`, 19 MiB by default) is reused from hash to hash instead of being
//!   allocated and freed per attempt: no allocator churn or page faults on the hot path. A worker
//!   takes a buffer from the pool's [`Memory`] for each job and gives it back after, so at most
//!   `workers × memory_kib` exists, and buffers left unused for [`IDLE_RELEASE`] are given back to
//!   the OS: an idle server does not keep 19 MiB per core resident for logins that do not come.

use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use super::wrapped_hash;

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
    Failed(#[from] HashFailure),
}

/// Why hashing failed (not for want of capacity). None of these texts holds a password or a
/// stored hash: argon2's errors name a parameter or a length, never a value.
#[derive(Debug, thiserror::Error)]
pub enum HashFailure {
    /// Parameters Argon2 refuses, or a hash it could not compute.
    #[error(transparent)]
    Argon2(argon2::Error),
    /// A salt, parameter string or output that does not fit the PHC format.
    #[error(transparent)]
    Phc(argon2::password_hash::Error),
    /// The OS refused a hashing thread.
    #[error(transparent)]
    Spawn(std::io::Error),
    #[error("hashing worker stopped")]
    WorkerStopped,
    #[error("hashing pool stopped")]
    PoolStopped,
    /// The stored hash is not a PHC string with an output. Its parse error is dropped: it would
    /// only say which part of a stored hash is malformed.
    #[error("the stored hash cannot be wrapped")]
    Unwrappable,
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
    Wrap { stored: String, reply: oneshot::Sender<Result<String, HashError>> },
}

#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Job>,
    workers: usize,
    /// Jobs submitted and not finished yet, and how many fit (workers + queue): lets a caller see
    /// that the pool is full before doing the work that would lead up to a hash.
    pending: Arc<AtomicUsize>,
    capacity: usize,
    /// Whether the OS accepted the lower priority for the hashing threads.
    priority_lowered: bool,
    memory: Arc<Memory>,
}

/// How long an Argon2 buffer may sit unused before it is given back to the OS. A minute: a
/// burst of logins keeps its buffers warm, an idle server holds none.
pub const IDLE_RELEASE: Duration = Duration::from_secs(60);

/// The pool's Argon2 buffers that no job is using, each with the time it was given back. A
/// worker holds at most one buffer at a time, so there are never more than `workers`.
struct Memory {
    free: Mutex<Vec<(ArgonMemory, Instant)>>,
    block_count: usize,
    idle_release: Duration,
    /// Buffers in existence, free or in use (for [`Hasher::buffers`]).
    allocated: AtomicUsize,
}

impl Memory {
    fn take(&self) -> ArgonMemory {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some((blocks, _)) => blocks,
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                own_mapping(self.block_count)
            }
        }
    }

    fn give_back(&self, blocks: ArgonMemory) {
        match self.free.lock() {
            Ok(mut free) => free.push((blocks, Instant::now())),
            Err(_) => {
                self.allocated.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Frees the buffers unused for `idle_release`; returns how long until the next one is due
    /// (or `idle_release` when none is left), which is how long the caller may wait for a job.
    /// A buffer given back while the caller waits is due later than that, so it is caught on
    /// the next wake-up: released after one to two idle periods.
    fn release_idle(&self) -> Duration {
        let Ok(mut free) = self.free.lock() else { return self.idle_release };
        let before = free.len();
        free.retain(|(_, since)| since.elapsed() < self.idle_release);
        self.allocated.fetch_sub(before - free.len(), Ordering::Relaxed);
        let next_due = free.iter().map(|(_, since)| self.idle_release.saturating_sub(since.elapsed())).min();
        // Never a busy loop: a buffer due in a microsecond waits a little longer.
        next_due.unwrap_or(self.idle_release).max(Duration::from_millis(10))
    }
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
        Self::start_with_idle_release(params, workers, queue, IDLE_RELEASE)
    }

    /// [`Hasher::start`], with Argon2 buffers freed after `idle_release` unused instead of
    /// [`IDLE_RELEASE`] (tests cannot wait a minute).
    pub fn start_with_idle_release(
        params: HashParams,
        workers: usize,
        queue: usize,
        idle_release: Duration,
    ) -> Result<Self, HashError> {
        let workers = workers.max(1);
        let argon2 = argon2_for(params)?;
        let dummy_pw = crate::opaque_token::generate().0;
        let blocks = argon2.params().block_count();
        let dummy = hash_with(&argon2, &mut own_mapping(blocks), dummy_pw.expose_secret().as_bytes())?;
        let memory = Arc::new(Memory {
            free: Mutex::new(Vec::new()),
            block_count: blocks,
            idle_release,
            allocated: AtomicUsize::new(0),
        });
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let (started_tx, started) = std::sync::mpsc::channel::<bool>();
        let pending = Arc::new(AtomicUsize::new(0));
        for n in 0..workers {
            let (rx, pending, memory) = (Arc::clone(&rx), Arc::clone(&pending), Arc::clone(&memory));
            let (argon2, dummy, started_tx) = (argon2.clone(), dummy.clone(), started_tx.clone());
            std::thread::Builder::new()
                .name(format!("rampart-hash-{n}"))
                .spawn(move || {
                    let _ = started_tx.send(lower_priority());
                    Worker { argon2, params, dummy }.run(&rx, &pending, &memory)
                })
                .map_err(HashFailure::Spawn)?;
        }
        drop(started_tx);
        let priority_lowered = started.iter().take(workers).all(|lowered| lowered);
        let capacity = workers + queue;
        Ok(Self { inner: Arc::new(Inner { tx, workers, pending, capacity, priority_lowered, memory }) })
    }

    /// How many Argon2 buffers the pool holds now, in use or kept for the next job: at most
    /// `workers`, and none once the pool has been idle for the release delay.
    pub fn buffers(&self) -> usize {
        self.inner.memory.allocated.load(Ordering::Relaxed)
    }

    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// False when the OS refused to lower the hashing threads' priority (they then compete with
    /// request threads as equals). `serve` logs it.
    pub fn priority_lowered(&self) -> bool {
        self.inner.priority_lowered
    }

    /// A PHC string (`$argon2id$v=19$m=...`) for a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.await.map_err(|_| HashFailure::WorkerStopped)?
    }

    /// Checks `password` against a stored PHC string, or against the dummy hash when there is no
    /// account (`None`): same work, always `Mismatch`.
    pub async fn verify(&self, password: SecretString, phc: Option<String>) -> Result<Verdict, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify { password, phc, reply })?;
        rx.await.map_err(|_| HashFailure::WorkerStopped)?
    }

    /// `stored` brought up to the current price without the password (see
    /// [`super::wrapped_hash`]); callers check [`needs_wrap`] first.
    pub async fn wrap(&self, stored: String) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Wrap { stored, reply })?;
        rx.await.map_err(|_| HashFailure::WorkerStopped)?
    }

    /// True when every worker is busy and the queue is full: a hash submitted now would be
    /// refused with `Busy`. A hint (another caller may free or take a slot a moment later), used
    /// to refuse a login before its database read rather than after it.
    pub fn saturated(&self) -> bool {
        self.inner.pending.load(Ordering::Relaxed) >= self.inner.capacity
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.inner.pending.fetch_add(1, Ordering::Relaxed);
        self.inner.tx.try_send(job).map_err(|e| {
            self.inner.pending.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => HashFailure::PoolStopped.into(),
            }
        })
    }
}

impl Worker {
    /// Takes jobs until the pool is dropped. The worker waiting for a job (the one holding the
    /// receiver; the others wait for the lock) first frees the buffers that are due, then waits
    /// no longer than until the next one is: an idle pool gives its memory back without a
    /// thread of its own.
    fn run(self, rx: &Mutex<Receiver<Job>>, pending: &AtomicUsize, memory: &Memory) {
        loop {
            let job = match rx.lock() {
                Ok(guard) => guard.recv_timeout(memory.release_idle()),
                Err(_) => return,
            };
            let job = match job {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut blocks = memory.take();
            match job {
                Job::Hash { password, reply } => {
                    let pw = password.expose_secret().as_bytes();
                    let _ = reply.send(hash_with(&self.argon2, &mut blocks, pw));
                }
                Job::Wrap { stored, reply } => {
                    let _ = reply.send(self.wrap(&mut blocks, &stored));
                }
                Job::Verify { password, phc, reply } => {
                    let _ = reply.send(Ok(self.verify(&mut blocks, &password, phc.as_deref())));
                }
            }
            memory.give_back(blocks);
            pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn verify(&self, blocks: &mut [Block], password: &SecretString, phc: Option<&str>) -> Verdict {
        let Some(phc) = phc else {
            let _ = self.check(blocks, password, &self.dummy);
            return Verdict::Mismatch;
        };
        if self.check(blocks, password, phc) {
            // A wrapped hash is replaced by a plain one at the first chance: it costs more.
            let rehash = wrapped_hash::parse(phc).is_some() || weaker_than(phc, self.params);
            Verdict::Match { rehash }
        } else {
            Verdict::Mismatch
        }
    }

    fn check(&self, blocks: &mut [Block], password: &SecretString, stored: &str) -> bool {
        // The parameters are taken from the stored string, so old hashes still verify.
        let pw = password.expose_secret().as_bytes();
        let checked = match wrapped_hash::parse(stored) {
            None => verify_with(blocks, pw, stored),
            Some(w) => unwrap_layers(blocks, pw, &w.layers).and_then(|inner| verify_with(blocks, &inner, w.outer)),
        };
        match checked {
            Some(matched) => matched,
            None => {
                // A corrupt stored hash must not be faster to reject than a real one.
                let _ = verify_with(blocks, pw, &self.dummy);
                false
            }
        }
    }

    /// Hashes the output stored in `stored` (the outer hash of a wrapped one) with the current
    /// parameters, and keeps its parameters and salt as a new innermost-to-outer layer.
    fn wrap(&self, blocks: &mut [Block], stored: &str) -> Result<String, HashError> {
        let bad = || HashError::Failed(HashFailure::Unwrappable);
        let wrapped = wrapped_hash::parse(stored);
        let (mut layers, outer) = match &wrapped {
            Some(w) => (w.layers.clone(), w.outer),
            None => (Vec::new(), stored),
        };
        let parsed = PasswordHash::new(outer).map_err(|_| bad())?;
        let output = parsed.hash.ok_or_else(bad)?;
        let without_output = PasswordHash { hash: None, ..parsed.clone() }.to_string();
        layers.push(wrapped_hash::Layer { len: output.len(), phc: &without_output });
        let new_outer = hash_with(&self.argon2, blocks, output.as_bytes())?;
        Ok(wrapped_hash::format(&layers, &new_outer))
    }
}

/// Recomputes the raw outputs of a wrapped hash's earlier layers from the password, innermost
/// first; the last one is the "password" of the outer hash.
fn unwrap_layers(blocks: &mut [Block], password: &[u8], layers: &[wrapped_hash::Layer<'_>]) -> Option<Vec<u8>> {
    let mut input = password.to_vec();
    for layer in layers {
        let parsed = PasswordHash::new(layer.phc).ok()?;
        let argon2 = argon2_of(&parsed)?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; layer.len];
        if !(Output::MIN_LENGTH..=Output::MAX_LENGTH).contains(&layer.len) {
            return None;
        }
        run_argon2(&argon2, blocks, &input, salt, &mut out).ok()?;
        input = out;
    }
    Some(input)
}

/// The Argon2 instance a PHC string names (algorithm, version, parameters).
fn argon2_of(parsed: &PasswordHash<'_>) -> Option<Argon2<'static>> {
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
    let params = Params::try_from(parsed).ok()?;
    Some(Argon2::new(algorithm, version, params))
}

/// True when `stored` costs less to verify than a hash made with `now` would: its outermost
/// hash is weaker (see [`weaker_than`]). `serve` wraps these at start.
pub fn needs_wrap(stored: &str, now: HashParams) -> bool {
    let outer = wrapped_hash::outermost(stored);
    PasswordHash::new(outer).is_ok_and(|p| p.hash.is_some()) && weaker_than(outer, now)
}

/// Lowers the calling thread below the request threads: SCHED_BATCH (no wake-up preemption of
/// interactive threads) at nice 10, where a nice-0 thread gets about ten times the CPU share.
/// Measured against SCHED_IDLE and plain nice 10 in docs/performance.md. Best effort: where it
/// is refused (another OS, a seccomp policy), hashing runs at normal priority; the result is
/// reported by [`Hasher::priority_lowered`]. Raising one's own nice value needs no privilege.
fn lower_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let Ok(value) = ThreadPriorityValue::try_from(HASH_PRIORITY) else { return false };
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), policy).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The crate's portable priority (0 to 99) that it maps to nice 10 on Linux (its raw OS value
/// cannot be built outside the crate). Unit test `hashing_threads_run_at_nice_10_batch` reads
/// the result back from /proc.
const HASH_PRIORITY: u8 = 22;

/// Argon2 memory, always from the system allocator (glibc's malloc), whatever the program's
/// global allocator is. The binary runs on mimalloc (issue 17), which keeps freed memory for
/// reuse: a freed 19 MiB buffer stayed resident (idle RSS 75.5 MB instead of under 30). These
/// buffers are the one large, rare allocation that must go back to the OS when freed.
type ArgonMemory = allocator_api2::vec::Vec<Block, System>;

/// `blocks` of Argon2 memory in an allocation of its own, so that freeing it gives the pages
/// back to the OS. Why the capacity is padded: glibc's malloc serves a large request with a
/// mapping of its own, but each free of such a mapping raises its threshold for that to the
/// size just freed (up to 32 MiB), so the next 19 MiB buffer would come from a heap arena and
/// stay resident after it is freed (measured: RSS grew with every release). A request of at
/// least 32 MiB is always mapped on its own; only the pages written are resident, so the
/// padding costs address space, not memory.
fn own_mapping(blocks: usize) -> ArgonMemory {
    const ALWAYS_MAPPED: usize = (32 << 20) / Block::SIZE + 1;
    let mut memory = ArgonMemory::with_capacity_in(blocks.max(ALWAYS_MAPPED), System);
    memory.resize(blocks, Block::default());
    memory
}

/// `Some(true|false)` for a well-formed PHC string, `None` for one that cannot be checked.
fn verify_with(blocks: &mut [Block], password: &[u8], phc: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let argon2 = argon2_of(&parsed)?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len())?;
    run_argon2(&argon2, blocks, password, salt, out).ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

/// Runs Argon2 in the worker's memory. A stored hash that asks for more memory than configured
/// (made before the parameters were lowered) gets a temporary buffer, so the worker's own never
/// grows past the configured size.
fn run_argon2(
    argon2: &Argon2<'_>,
    blocks: &mut [Block],
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let needed = argon2.params().block_count();
    match blocks.get_mut(..needed) {
        Some(own) => argon2.hash_password_into_with_memory(pw, salt, out, own),
        None => argon2.hash_password_into_with_memory(pw, salt, out, &mut *own_mapping(needed)),
    }
}

pub fn argon2_for(p: HashParams) -> Result<Argon2<'static>, HashError> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(HashFailure::Argon2)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC string for a new password: a random 16-byte salt, the configured parameters, and a
/// 32-byte output computed in `blocks`.
fn hash_with(argon2: &Argon2<'_>, blocks: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut OsRng, &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(HashFailure::Phc)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run_argon2(argon2, blocks, password, &salt_bytes, &mut out).map_err(HashFailure::Argon2)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(HashFailure::Phc)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(HashFailure::Phc)?),
    };
    Ok(phc.to_string())
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

    #[test]
    fn a_failure_keeps_its_cause() {
        let Err(e) = argon2_for(HashParams { memory_kib: 0, ..SMALL }) else { panic!("0 KiB accepted") };
        assert!(matches!(e, HashError::Failed(HashFailure::Argon2(_))), "{e:?}");
        let cause = std::error::Error::source(&e).expect("a cause");
        assert_eq!(e.to_string(), format!("password hashing failed: {cause}"));
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
    async fn wrapped_hashes_verify_cost_the_current_price_and_ask_for_rehash() {
        let old = Hasher::start(SMALL, 1, 4).unwrap();
        let phc = old.hash(pw("correct horse")).await.unwrap();
        let stronger = HashParams { memory_kib: 2048, iterations: 2, parallelism: 1 };
        assert!(needs_wrap(&phc, stronger) && !needs_wrap(&phc, SMALL));
        let new = Hasher::start(stronger, 1, 4).unwrap();
        let wrapped = new.wrap(phc.clone()).await.unwrap();
        assert!(wrapped.starts_with("rampart-wrap1;32;$argon2id$v=19$m=1024,t=1,p=1$"), "{wrapped}");
        assert!(wrapped.ends_with(&wrapped[wrapped.rfind(";$argon2id$v=19$m=2048,t=2,p=1$").unwrap()..]));
        // The old output is not kept: only the old parameters and salt.
        let old_output = phc.rsplit('$').next().unwrap();
        assert!(!wrapped.contains(old_output), "{wrapped}");
        assert!(!needs_wrap(&wrapped, stronger));
        assert_eq!(
            new.verify(pw("correct horse"), Some(wrapped.clone())).await.unwrap(),
            Verdict::Match { rehash: true }
        );
        assert_eq!(new.verify(pw("wrong horse"), Some(wrapped.clone())).await.unwrap(), Verdict::Mismatch);
        // Raised again: a second layer.
        let strongest = HashParams { memory_kib: 4096, iterations: 2, parallelism: 1 };
        assert!(needs_wrap(&wrapped, strongest));
        let newest = Hasher::start(strongest, 1, 4).unwrap();
        let twice = newest.wrap(wrapped).await.unwrap();
        assert_eq!(wrapped_hash::parse(&twice).unwrap().layers.len(), 2);
        assert_eq!(
            newest.verify(pw("correct horse"), Some(twice.clone())).await.unwrap(),
            Verdict::Match { rehash: true }
        );
        assert_eq!(newest.verify(pw("wrong horse"), Some(twice)).await.unwrap(), Verdict::Mismatch);
    }

    /// The scheduling of each `rampart-hash-*` thread, from /proc: (policy, nice).
    #[cfg(target_os = "linux")]
    fn hash_threads() -> Vec<(u32, i32)> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("rampart-hash") {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            // Fields after the parenthesised name: state is field 3, nice 19, policy 41.
            let rest: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
            found.push((rest[38].parse().unwrap(), rest[16].parse().unwrap()));
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_nice_10_batch() {
        let h = Hasher::start(SMALL, 2, 4).unwrap();
        assert!(h.priority_lowered());
        let threads = hash_threads();
        assert!(threads.len() >= 2, "{threads:?}");
        const SCHED_BATCH: u32 = 3;
        assert!(threads.iter().all(|t| *t == (SCHED_BATCH, 10)), "{threads:?}");
    }

    /// Hashes made in the worker's reused memory are standard PHC strings: the reference
    /// implementation (the argon2 crate's own `PasswordVerifier`) accepts them, and ours accepts
    /// the reference's, with other parameters and algorithms too.
    #[tokio::test]
    async fn reused_memory_hashes_are_standard_phc() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = Hasher::start(SMALL, 1, 4).unwrap();
        let a = h.hash(pw("correct horse")).await.unwrap();
        let b = h.hash(pw("correct horse")).await.unwrap();
        assert_ne!(a, b, "salts must differ");
        let reference = argon2_for(SMALL).unwrap();
        assert!(reference.verify_password(b"correct horse", &PasswordHash::new(&a).unwrap()).is_ok());
        assert!(reference.verify_password(b"wrong horse", &PasswordHash::new(&a).unwrap()).is_err());
        for alg in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let other = Argon2::new(alg, Version::V0x13, Params::new(2048, 2, 2, None).unwrap());
            let salt = SaltString::generate(&mut OsRng);
            let phc = other.hash_password(b"correct horse", &salt).unwrap().to_string();
            assert!(matches!(h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap(), Verdict::Match { .. }));
            assert_eq!(h.verify(pw("wrong horse"), Some(phc)).await.unwrap(), Verdict::Mismatch);
        }
    }

    #[tokio::test]
    async fn saturation_is_visible_before_submitting() {
        // Each hash takes about a second (little memory, so that the RSS check of the limiter
        // test running beside it is not disturbed), so the pool stays full while it is looked at.
        let slow = HashParams { memory_kib: 8192, iterations: 160, parallelism: 1 };
        let h = Hasher::start(slow, 1, 1).unwrap();
        assert!(!h.saturated());
        // Keep offering jobs until one worker and one queue slot are taken (an offer made before
        // the worker has picked up the previous job is refused with Busy, and simply retried).
        let mut jobs = Vec::new();
        let mut seen = false;
        for _ in 0..100 {
            let h2 = h.clone();
            jobs.push(tokio::spawn(async move { h2.hash(pw("x")).await }));
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            if h.saturated() {
                seen = true;
                break;
            }
        }
        assert!(seen, "a pool of one worker and one queue slot never reported itself full");
        for j in jobs {
            let _ = j.await.unwrap();
        }
        assert!(!h.saturated(), "every job is finished, yet the pool says it is full");
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
        assert!(!h.saturated(), "every job is finished, yet the pool says it is full");
    }
}
