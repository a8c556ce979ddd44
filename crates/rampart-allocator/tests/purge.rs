//! Memory freed under the binary's allocator goes back to the OS at once, so that an idle server
//! does not keep what its last requests used. Its own test binary: it reads the process's RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static ALLOCATOR: rampart_allocator::MiMalloc = rampart_allocator::MiMalloc;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn freed_small_blocks_leave_the_process_at_once() {
    rampart_allocator::configure();
    assert_eq!(rampart_allocator::purge_delay_ms(), 0);
    // 32 MiB in 8 KiB blocks: the many small allocations of requests, not one large buffer.
    let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![u8::try_from(i % 251).unwrap(); 8192]).collect();
    let held = rss_kib();
    drop(std::hint::black_box(blocks));
    let released = rss_kib();
    // Without the option, mimalloc keeps the emptied pages (purged after a second, and only when
    // this thread allocates again): RSS stays where it was.
    assert!(
        released + 24 * 1024 <= held,
        "RSS went from {held} KiB to {released} KiB: the freed 32 MiB stayed resident"
    );
}
