//! `/readyz` is public and exempt from rate limits, so it must not be a way to load the database:
//! however many probes arrive, an instance checks its dependencies at most about once a second,
//! and an outage still shows within about a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// The value of the sample whose line starts with `series`, or 0.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// A TCP relay between the server and PostgreSQL that counts what the server sends (each
/// read is at least one message; a query round trip is at least one), and can be cut.
struct CountingRelay {
    port: u16,
    sends: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
}

impl CountingRelay {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sends, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (s, d) = (Arc::clone(&sends), Arc::clone(&down));
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if d.load(Ordering::SeqCst) {
                    continue; // cut: closed at once
                }
                let (target, s, d) = (target.clone(), Arc::clone(&s), Arc::clone(&d));
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n @ 1..) = cr.read(&mut buf).await {
                            s.fetch_add(1, Ordering::SeqCst);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down_stream = tokio::io::copy(&mut sr, &mut cw);
                    let cut = async {
                        while !d.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { () = up => {}, _ = down_stream => {}, () = cut => {} }
                });
            }
        });
        Self { port, sends, down }
    }
    fn sends(&self) -> u64 {
        self.sends.load(Ordering::SeqCst)
    }
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
    }
}

/// Hammers `/readyz` from four connections for `time`; every answer must be 200. Returns how
/// many probes were answered.
async fn hammer(app: &TestApp, time: Duration) -> u64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, url) = (app.client.clone(), app.url("/readyz"));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < time {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reaches_the_database_at_most_once_a_second() {
    // On PostgreSQL the server talks to its database through a relay that counts, so the
    // database side is observed directly, not only through the server's own metric.
    let relay = match postgres_admin_url() {
        Some(admin) => {
            let hostport = admin.split_once("://").unwrap().1.rsplit_once('@').map_or("", |(_, h)| h);
            Some(CountingRelay::start(hostport.split('/').next().unwrap().to_owned()).await)
        }
        None => None,
    };
    let mut builder = TestApp::builder();
    if let Some(r) = &relay {
        builder = builder.postgres_port(r.port);
    }
    let app = builder.spawn().await;
    assert_eq!(app.get("/readyz").await.status, 200);

    // What one real check costs on the wire, after the last verdict has expired.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let one_check = match &relay {
        Some(r) => {
            let before = r.sends();
            assert_eq!(app.get("/readyz").await.status, 200);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((r.sends() - before).max(1))
        }
        None => None,
    };

    // What the server sends on its own while nobody probes (the revocation feed each second, the
    // mail outbox's poll every two seconds), over a window longer than the hammering below: that
    // much traffic is not the probes' doing and is allowed on top of the checks.
    let background = match &relay {
        Some(r) => {
            let before = r.sends();
            tokio::time::sleep(Duration::from_secs(3)).await;
            r.sends() - before
        }
        None => 0,
    };

    let checks_before = sample(&app.metrics().await, "rampart_readiness_checks_total");
    let sends_before = relay.as_ref().map(CountingRelay::sends);
    let started = Instant::now();
    let probes = hammer(&app, Duration::from_secs(2)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let checks = sample(&app.metrics().await, "rampart_readiness_checks_total") - checks_before;
    // One check a second, plus the one at the start and some slack for a noisy machine.
    let allowed = elapsed.ceil() + 2.0;
    assert!(probes >= 200, "only {probes} probes in {elapsed:.1}s: the test would prove nothing");
    assert!(checks >= 1.0 && checks <= allowed, "{checks} dependency checks for {probes} probes in {elapsed:.1}s");
    if let (Some(r), Some(one), Some(before)) = (&relay, one_check, sends_before) {
        let sends = r.sends() - before;
        // Room for a reconnect (startup and authentication messages) besides the checks and the
        // server's own background traffic.
        let limit = one * allowed as u64 + 20 + background;
        assert!(
            sends <= limit,
            "{sends} messages to PostgreSQL for {probes} probes (one check: {one}, background: {background}, limit {limit})"
        );

        // The cache does not hide an outage for long: the database goes away, /readyz says so
        // within about a second (generous bounds: the machine is shared).
        r.cut();
        let cut_at = Instant::now();
        loop {
            let status = app.get("/readyz").await.status;
            if status == 503 {
                break;
            }
            assert_eq!(status, 200);
            assert!(cut_at.elapsed() < Duration::from_secs(5), "still ready 5 s after the database went away");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
