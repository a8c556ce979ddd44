//! One Argon2id verification at the default parameters (19 MiB, t=2, p=1), as the hashing pool
//! runs it (the argon2-rust kernel, its memory reused from hash to hash): the denominator of the
//! login-rate ratio in docs/performance.md ("Logins"). Build it in release:
//!
//! ```sh
//! cargo run --release -p rampart-core --example argon2_verify            # 40 runs, 1 thread
//! cargo run --release -p rampart-core --example argon2_verify -- 40 2    # 2 threads at once
//! ```
//!
//! Prints the median and fastest wall time of one hash on one thread, and, with more threads,
//! the hashes per second they reach together (what a pool of that many workers can at best do).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a measuring tool, not the server

use std::time::Instant;

use rampart_core::auth::hasher::{HashParams, argon2_for};

const DEFAULT: HashParams = HashParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40).max(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let started = Instant::now();
    let per_thread: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || hash_times(runs))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut times: Vec<f64> = per_thread.concat();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "argon2id m=19456 t=2 p=1, {threads} thread(s) x {runs}: median {median:.2} ms, fastest {:.2} ms, \
         {:.1} hashes/s together (cores / median = {:.1}/s)",
        times[0],
        (threads * runs) as f64 / wall,
        threads as f64 * 1000.0 / median,
    );
}

/// Wall times (ms) of `runs` hashes after two warm-up hashes, in one reused kernel.
fn hash_times(runs: usize) -> Vec<f64> {
    let mut kernel = argon2_for(DEFAULT).expect("default parameters").hasher();
    let mut out = [0u8; 32];
    let mut hash = || kernel.hash_into(b"correct horse", b"0123456789abcdef", &mut out);
    hash().unwrap();
    hash().unwrap();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            hash().unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}
