//! The hashing pool gives its Argon2 memory back to the OS after an idle period (an idle server
//! should not keep 19 MiB per core resident). Its own test binary: it reads the process's RSS,
//! which other tests running beside it in one process would disturb.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use rampart_core::auth::hasher::{HashParams, Hasher, Verdict};
use secrecy::SecretString;

/// mimalloc, the `rampart` binary's allocator, here with its defaults (the binary also has it
/// purge empty pages at once): it keeps freed memory for reuse, and the Argon2 memory must go
/// back to the OS whatever it does, which is why it must never come from the global allocator
/// (the kernel maps it from the OS itself).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 24 MiB: under glibc's 32 MiB ceiling for its mapping threshold, where a plain `Vec` of that
/// size from the system allocator would come from a heap arena and stay resident after it is
/// freed.
const PARAMS: HashParams = HashParams { memory_kib: 24 * 1024, iterations: 1, parallelism: 1 };

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn idle_argon2_memory_is_given_back_to_the_os() {
    // A freed allocation of this size raises glibc's threshold for mapping large requests on
    // their own (as any large buffer freed earlier in a server's life would).
    drop(std::hint::black_box(vec![1u8; 24 << 20]));
    let idle = Duration::from_secs(2);
    let h = Hasher::start_with_idle_release(PARAMS, 1, 4, idle).unwrap();
    assert_eq!(h.buffers(), 0, "a buffer before any job");
    let phc = h.hash(pw("correct horse")).await.unwrap();
    assert_eq!(h.verify(pw("correct horse"), Some(phc.clone())).await.unwrap(), Verdict::Match { rehash: false });
    // Kept between jobs: the second job reused the first one's buffer.
    assert_eq!(h.buffers(), 1);
    let held = rss_kib();

    let start = Instant::now();
    while h.buffers() > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.buffers(), 0, "the buffer was not released after {:?} idle", start.elapsed());
    assert!(start.elapsed() >= idle / 2, "released after {:?}, before the pool was idle long enough", start.elapsed());
    let released = rss_kib();
    assert!(
        released + 16 * 1024 <= held,
        "RSS went from {held} KiB to {released} KiB: the 24 MiB buffer stayed resident"
    );

    // The pool still works, with a fresh buffer.
    assert_eq!(h.verify(pw("wrong horse"), Some(phc)).await.unwrap(), Verdict::Mismatch);
    assert_eq!(h.buffers(), 1);
}
