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
//!   allocated and freed per attempt: no page faults on the hot path. A worker takes a kernel
//!   with its memory from the pool's [`Memory`] for each job and gives it back after, so at most
//!   `workers × memory_kib` exists, and memory left unused for [`IDLE_RELEASE`] is given back to
//!   the OS: an idle server does not keep 19 MiB per core resident for logins that do not come.
//!
//! The Argon2 computation is the `argon2-rust` crate's (a port of the reference implementation
//! with the reference's SIMD, chosen at run time): measured here it hashes our parameters in
//! about half the time of the RustCrypto `argon2` crate, which is what bounds logins per second
//! (issue 17; docs/dependencies.md says why it is trusted). The PHC strings are read and written
//! by RustCrypto's `password-hash`, and a test holds every hash to the `argon2` crate's answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2_rust::params::{Memory as KiB, TagLen};
use argon2_rust::{Algorithm, Argon2, Params, Version};
use password_hash::{Ident, Output, ParamsString, PasswordHash, SaltString};
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
/// stored hash: Argon2's errors name a parameter or a length, never a value.
#[derive(Debug, thiserror::Error)]
pub enum HashFailure {
    /// Parameters Argon2 refuses, or a hash it could not compute.
    #[error(transparent)]
    Argon2(argon2_rust::Error),
    /// A salt, parameter string or output that does not fit the PHC format.
    #[error(transparent)]
    Phc(password_hash::Error),
    /// The OS refused a hashing thread.
    #[error(transparent)]
    Spawn(std::io::Error),
    #[error("hashing worker stopped")]
    WorkerStopped,
    /// The Argon2 kernel did not compute RFC 9106's test vector on this CPU: no hash it made
    /// could be trusted, so the server does not start.
    #[error("the Argon2 implementation failed its known-answer test on this CPU")]
    SelfTest,
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

/// The pool's Argon2 kernels (each an `argon2_rust::Hasher`, which keeps its memory from hash
/// to hash) that no job is using, each with the time it was given back. A worker holds at most
/// one at a time, so there are never more than `workers`.
struct Memory {
    free: Mutex<Vec<(Kernel, Instant)>>,
    configured: Argon2,
    idle_release: Duration,
    /// Kernels in existence, free or in use (for [`Hasher::buffers`]).
    allocated: AtomicUsize,
}

/// One Argon2 computation's memory, kept between hashes. Dropping it wipes the memory and
/// unmaps it (the crate maps it from the OS itself, never through the global allocator).
type Kernel = argon2_rust::Hasher;

impl Memory {
    fn take(&self) -> Kernel {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some((kernel, _)) => kernel,
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                self.configured.hasher()
            }
        }
    }

    fn give_back(&self, kernel: Kernel) {
        match self.free.lock() {
            Ok(mut free) => free.push((kernel, Instant::now())),
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
    argon2: Argon2,
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
        known_answer(&RFC_9106_ARGON2ID)?;
        let argon2 = argon2_for(params)?;
        let dummy_pw = crate::opaque_token::generate().0;
        let dummy = hash_with(&argon2, &mut argon2.hasher(), dummy_pw.expose_secret().as_bytes())?;
        let memory = Arc::new(Memory {
            free: Mutex::new(Vec::new()),
            configured: argon2,
            idle_release,
            allocated: AtomicUsize::new(0),
        });
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let (started_tx, started) = std::sync::mpsc::channel::<bool>();
        let pending = Arc::new(AtomicUsize::new(0));
        for n in 0..workers {
            let (rx, pending, memory) = (Arc::clone(&rx), Arc::clone(&pending), Arc::clone(&memory));
            let (dummy, started_tx) = (dummy.clone(), started_tx.clone());
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

    /// How many Argon2 kernels (each with its memory once it has hashed) the pool holds now, in
    /// use or kept for the next job: at most `workers`, and none once the pool has been idle for
    /// the release delay.
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
            let mut kernel = memory.take();
            match job {
                Job::Hash { password, reply } => {
                    let pw = password.expose_secret().as_bytes();
                    let _ = reply.send(hash_with(&self.argon2, &mut kernel, pw));
                }
                Job::Wrap { stored, reply } => {
                    let _ = reply.send(self.wrap(&mut kernel, &stored));
                }
                Job::Verify { password, phc, reply } => {
                    let _ = reply.send(Ok(self.verify(&mut kernel, &password, phc.as_deref())));
                }
            }
            memory.give_back(kernel);
            pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn verify(&self, kernel: &mut Kernel, password: &SecretString, phc: Option<&str>) -> Verdict {
        let Some(phc) = phc else {
            let _ = self.check(kernel, password, &self.dummy);
            return Verdict::Mismatch;
        };
        if self.check(kernel, password, phc) {
            // A wrapped hash is replaced by a plain one at the first chance: it costs more.
            let rehash = wrapped_hash::parse(phc).is_some() || weaker_than(phc, self.params);
            Verdict::Match { rehash }
        } else {
            Verdict::Mismatch
        }
    }

    fn check(&self, kernel: &mut Kernel, password: &SecretString, stored: &str) -> bool {
        // The parameters are taken from the stored string, so old hashes still verify.
        let pw = password.expose_secret().as_bytes();
        let checked = match wrapped_hash::parse(stored) {
            None => verify_with(kernel, pw, stored),
            Some(w) => unwrap_layers(kernel, pw, &w.layers).and_then(|inner| verify_with(kernel, &inner, w.outer)),
        };
        match checked {
            Some(matched) => matched,
            None => {
                // A corrupt stored hash must not be faster to reject than a real one.
                let _ = verify_with(kernel, pw, &self.dummy);
                false
            }
        }
    }

    /// Hashes the output stored in `stored` (the outer hash of a wrapped one) with the current
    /// parameters, and keeps its parameters and salt as a new innermost-to-outer layer.
    fn wrap(&self, kernel: &mut Kernel, stored: &str) -> Result<String, HashError> {
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
        let new_outer = hash_with(&self.argon2, kernel, output.as_bytes())?;
        Ok(wrapped_hash::format(&layers, &new_outer))
    }
}

/// Recomputes the raw outputs of a wrapped hash's earlier layers from the password, innermost
/// first; the last one is the "password" of the outer hash.
fn unwrap_layers(kernel: &mut Kernel, password: &[u8], layers: &[wrapped_hash::Layer<'_>]) -> Option<Vec<u8>> {
    let mut input = password.to_vec();
    for layer in layers {
        let parsed = PasswordHash::new(layer.phc).ok()?;
        if !(Output::MIN_LENGTH..=Output::MAX_LENGTH).contains(&layer.len) {
            return None;
        }
        let argon2 = argon2_of(&parsed, layer.len)?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; layer.len];
        run_argon2(&argon2, kernel, &input, salt, &mut out).ok()?;
        input = out;
    }
    Some(input)
}

/// The Argon2 instance a PHC string names (algorithm, version, `m`, `t`, `p`), with an output
/// of `output_len` bytes. `None` for anything else: another algorithm, an unknown version, a
/// parameter missing, repeated or unknown (`keyid` and `data` included: Rampart never writes
/// them), or values Argon2 refuses. A missing version is 0x13, as the `argon2` crate reads it.
fn argon2_of(parsed: &PasswordHash<'_>, output_len: usize) -> Option<Argon2> {
    let algorithm = match parsed.algorithm.as_str() {
        "argon2id" => Algorithm::Argon2id,
        "argon2i" => Algorithm::Argon2i,
        "argon2d" => Algorithm::Argon2d,
        _ => return None,
    };
    let version = match parsed.version {
        None | Some(0x13) => Version::V0x13,
        Some(0x10) => Version::V0x10,
        Some(_) => return None,
    };
    let (mut m, mut t, mut p) = (None, None, None);
    for (name, value) in parsed.params.iter() {
        let slot = match name.as_str() {
            "m" => &mut m,
            "t" => &mut t,
            "p" => &mut p,
            _ => return None,
        };
        if slot.replace(value.decimal().ok()?).is_some() {
            return None;
        }
    }
    Some(Argon2::new(algorithm, version, params(m?, t?, p?, output_len).ok()?))
}

/// The PHC parameters `m`, `t` and `p` of `phc`, when it is Argon2id v1.3 with those three.
fn argon2id_costs(phc: &str) -> Option<(u32, u32)> {
    let parsed = PasswordHash::new(phc).ok()?;
    let argon2 = argon2_of(&parsed, OUTPUT_LEN)?;
    let is_argon2id_v13 = argon2.algorithm() == Algorithm::Argon2id && parsed.version == Some(0x13);
    is_argon2id_v13.then(|| (argon2.params().memory_kib(), argon2.params().passes()))
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

/// `Some(true|false)` for a well-formed PHC string, `None` for one that cannot be checked.
fn verify_with(kernel: &mut Kernel, password: &[u8], phc: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let expected = parsed.hash?;
    let argon2 = argon2_of(&parsed, expected.len())?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len())?;
    run_argon2(&argon2, kernel, password, salt, out).ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

/// Runs `argon2` in the worker's kernel, whose memory is sized for the configured parameters. A
/// stored hash that asks for more memory than that (made before the parameters were lowered)
/// is computed in memory of its own, freed after, so the worker's never grows past the
/// configured size.
fn run_argon2(
    argon2: &Argon2,
    kernel: &mut Kernel,
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2_rust::Error> {
    if argon2.params().memory_blocks() > kernel.params().memory_blocks() {
        return argon2.hash_into(pw, salt, out);
    }
    // The kernel is put back to the configured parameters after: they are its memory's size, the
    // measure of the test above for the next job.
    let own = *kernel.argon2();
    kernel.set_argon2(*argon2);
    let hashed = kernel.hash_into(pw, salt, out);
    kernel.set_argon2(own);
    hashed
}

/// An Argon2 test vector: the inputs and the tag they must give.
struct TestVector {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    password: [u8; 32],
    salt: [u8; 16],
    secret: [u8; 8],
    ad: [u8; 12],
    tag: [u8; 32],
}

/// RFC 9106, section 5.3 (Argon2id, version 0x13).
const RFC_9106_ARGON2ID: TestVector = TestVector {
    memory_kib: 32,
    passes: 3,
    lanes: 4,
    password: [1; 32],
    salt: [2; 16],
    secret: [3; 8],
    ad: [4; 12],
    tag: [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53, 0xc9, 0xd0, 0x1e,
        0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01, 0xe6, 0x59,
    ],
};

/// Checks the kernel against `vector` before the pool hashes anything. Why: the kernel picks
/// its SIMD code by the CPU it runs on (AVX-512, AVX2, SSE, NEON or portable), and the test
/// suite only proves the one of the machine it runs on. A wrong computation elsewhere would
/// store hashes nobody can verify and lock every user out; this makes it a refusal to start.
fn known_answer(vector: &TestVector) -> Result<(), HashFailure> {
    let params =
        params(vector.memory_kib, vector.passes, vector.lanes, vector.tag.len()).map_err(HashFailure::Argon2)?;
    let mut tag = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_into_with_ad(&vector.password, &vector.salt, &vector.secret, &vector.ad, &mut tag)
        .map_err(HashFailure::Argon2)?;
    if tag == vector.tag { Ok(()) } else { Err(HashFailure::SelfTest) }
}

/// Argon2id v1.3 with the configured costs and a 32-byte output: what every new hash is.
pub fn argon2_for(p: HashParams) -> Result<Argon2, HashError> {
    let params = params(p.memory_kib, p.iterations, p.parallelism, OUTPUT_LEN).map_err(HashFailure::Argon2)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Argon2's parameters (memory in KiB, passes, lanes, output bytes), as the kernel checks them.
fn params(memory_kib: u32, passes: u32, lanes: u32, output_len: usize) -> Result<Params, argon2_rust::Error> {
    Params::builder()
        .memory(KiB::kib(memory_kib.into()))
        .passes(passes)
        .lanes(lanes)
        .tag_len(TagLen::bytes(output_len as u64))
        .build()
}

/// Bytes of a new hash's output (the PHC default).
const OUTPUT_LEN: usize = 32;

/// A PHC string for a new password: a random 16-byte salt, `argon2`'s parameters, and a
/// 32-byte output computed in `kernel`.
fn hash_with(argon2: &Argon2, kernel: &mut Kernel, password: &[u8]) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut OsRng, &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(HashFailure::Phc)?;
    let mut out = [0u8; OUTPUT_LEN];
    run_argon2(argon2, kernel, password, &salt_bytes, &mut out).map_err(HashFailure::Argon2)?;
    let p = argon2.params();
    let mut params = ParamsString::new();
    for (name, value) in [("m", p.memory_kib()), ("t", p.passes()), ("p", p.lanes())] {
        params.add_decimal(name, value).map_err(HashFailure::Phc)?;
    }
    let phc = PasswordHash {
        algorithm: Ident::new("argon2id").map_err(HashFailure::Phc)?,
        version: Some(Version::V0x13.as_u32()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(HashFailure::Phc)?),
    };
    Ok(phc.to_string())
}

/// True when `phc` is not Argon2id v1.3 or used less memory or fewer iterations than `now`.
pub fn weaker_than(phc: &str, now: HashParams) -> bool {
    match argon2id_costs(phc) {
        Some((memory_kib, iterations)) => memory_kib < now.memory_kib || iterations < now.iterations,
        None => true,
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

    /// Hashes made in the worker's reused memory are standard PHC strings: the RustCrypto
    /// `argon2` crate (the reference here) accepts them, and ours accepts the reference's, with
    /// other parameters, algorithms and versions too.
    #[tokio::test]
    async fn reused_memory_hashes_are_standard_phc() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let h = Hasher::start(SMALL, 1, 4).unwrap();
        let a = h.hash(pw("correct horse")).await.unwrap();
        let b = h.hash(pw("correct horse")).await.unwrap();
        assert_ne!(a, b, "salts must differ");
        let reference = argon2::Argon2::default();
        let parsed = argon2::PasswordHash::new(&a).unwrap();
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
        assert!(reference.verify_password(b"wrong horse", &parsed).is_err());
        for alg in [argon2::Algorithm::Argon2id, argon2::Algorithm::Argon2i, argon2::Algorithm::Argon2d] {
            for version in [argon2::Version::V0x13, argon2::Version::V0x10] {
                for (m, t, p, len) in [(2048, 2, 2, 32), (1024, 3, 1, 16), (4096, 1, 4, 64)] {
                    let params = argon2::Params::new(m, t, p, Some(len)).unwrap();
                    let other = argon2::Argon2::new(alg, version, params);
                    let salt = SaltString::generate(&mut OsRng);
                    let phc = other.hash_password(b"correct horse", &salt).unwrap().to_string();
                    let verdict = h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap();
                    assert!(matches!(verdict, Verdict::Match { .. }), "{phc}");
                    assert_eq!(h.verify(pw("wrong horse"), Some(phc)).await.unwrap(), Verdict::Mismatch);
                }
            }
        }
    }

    /// The test vector the pool checks at start is RFC 9106's, as the reference computes it, and
    /// a kernel that computed anything else would stop the pool from starting.
    #[test]
    fn the_start_up_known_answer_test_is_rfc_9106s() {
        let v = &RFC_9106_ARGON2ID;
        let params = argon2::ParamsBuilder::new()
            .m_cost(v.memory_kib)
            .t_cost(v.passes)
            .p_cost(v.lanes)
            .data(argon2::AssociatedData::new(&v.ad).unwrap())
            .build()
            .unwrap();
        let reference =
            argon2::Argon2::new_with_secret(&v.secret, argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .unwrap();
        let mut tag = [0u8; 32];
        reference.hash_password_into(&v.password, &v.salt, &mut tag).unwrap();
        assert_eq!(tag, v.tag, "the reference disagrees with the vector as written here");
        known_answer(v).unwrap();
        let mut wrong = RFC_9106_ARGON2ID;
        wrong.tag[31] ^= 1;
        assert!(matches!(known_answer(&wrong), Err(HashFailure::SelfTest)));
    }

    /// The kernel computes what the reference computes, byte for byte, in a kernel reused across
    /// parameter sets (smaller and larger than its own, which takes the one-off memory path).
    #[test]
    fn the_kernel_agrees_with_the_reference() {
        let mut kernel = argon2_for(SMALL).unwrap().hasher();
        for (m, t, p) in [(1024, 1, 1), (512, 2, 1), (2048, 2, 2), (1024, 1, 1), (8, 1, 1)] {
            let reference = argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(m, t, p, Some(32)).unwrap(),
            );
            let mut expected = [0u8; 32];
            reference.hash_password_into(b"correct horse", b"0123456789abcdef", &mut expected).unwrap();
            let ours = argon2_for(HashParams { memory_kib: m, iterations: t, parallelism: p }).unwrap();
            let mut out = [0u8; 32];
            run_argon2(&ours, &mut kernel, b"correct horse", b"0123456789abcdef", &mut out).unwrap();
            assert_eq!(out, expected, "m={m} t={t} p={p}");
        }
        assert_eq!(kernel.params().memory_kib(), SMALL.memory_kib, "the larger job did not take the kernel's memory");
    }

    /// A PHC string with parameters Rampart does not read (`keyid`, `data`, one repeated, one
    /// missing) or an unknown version is not checked at all: it is a mismatch, at full price.
    #[tokio::test]
    async fn phc_strings_with_parameters_it_does_not_read_are_refused() {
        let h = Hasher::start(SMALL, 1, 4).unwrap();
        let good = h.hash(pw("correct horse")).await.unwrap();
        let (head, tail) = good.split_once("$m=1024,t=1,p=1$").unwrap();
        for params in ["m=1024,t=1,p=1,keyid=YWJj", "m=1024,t=1,p=1,data=YWJj", "m=1024,t=1", "m=1024,m=1024,t=1,p=1"] {
            let odd = format!("{head}${params}${tail}");
            assert_eq!(h.verify(pw("correct horse"), Some(odd.clone())).await.unwrap(), Verdict::Mismatch, "{odd}");
        }
        let odd = good.replace("$v=19$", "$v=18$");
        assert_eq!(h.verify(pw("correct horse"), Some(odd)).await.unwrap(), Verdict::Mismatch);
        assert_eq!(h.verify(pw("correct horse"), Some(good)).await.unwrap(), Verdict::Match { rehash: false });
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
