//! The binary's memory allocator: mimalloc (issue 17), told to give pages back to the OS as soon
//! as they are empty.
//!
//! Why mimalloc: a request allocates and frees many small objects, and glibc's malloc was a
//! large share of the CPU time of the list and create paths (docs/performance.md); mimalloc's
//! per-thread free lists make those cheap.
//!
//! Why the option: by default mimalloc keeps an empty page for a second before it purges it, and
//! purges only when the thread that owns it next allocates. A server that goes idle stops
//! allocating on most of its threads, so what they freed last stayed resident: idle RSS ~30 MB
//! where the system allocator left ~28 (the bound is 30). Purging at once costs a
//! `madvise` when a page empties: 23 a second under a `/healthz` load of ~10 000 requests a second
//! (strace), nothing measurable.
//!
//! The Argon2 memory does not come from here at all (`rampart_core::auth::hasher`): the Argon2
//! kernel maps it from the OS itself and unmaps it when dropped, whatever this allocator does.

pub use mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its position in `mi_option_e` (mimalloc.h, the same in v2
/// and v3). The sys crate names the options around it but not this one.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's options. Call it first thing in `main`, before any thread starts: mimalloc's
/// options are plain values, not synchronized.
pub fn configure() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; both arguments are
    // integers, no pointer crosses, and no other thread reads the table yet.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// The purge delay mimalloc uses now, in milliseconds (0: at once).
pub fn purge_delay_ms() -> std::ffi::c_long {
    // SAFETY: `mi_option_get` reads an integer from mimalloc's option table; no pointer crosses.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(PURGE_DELAY)
    }
}
