//! The Redis backends against a real `redis-server`: each test starts its own on a free port
//! (never 6379) and kills it when done. Two `SharedState`s (a `Limiter` and a `Revocations` over
//! one connection) on one Redis stand for two Rampart instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rampart_core::clock::now_ms;
use rampart_core::config::SecretUrl;
use rampart_shared::SharedState;
use rampart_shared::limit::{Bucket, Limiter, Policy, Quota, Quotas};
use rampart_shared::revocation::{Revocations, Revoked};

/// A `redis-server` of this test's own, killed on drop.
struct TestRedis {
    port: u16,
    child: Option<Child>,
}

impl TestRedis {
    fn start() -> Self {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_ne!(port, 6379);
        let mut r = Self { port, child: None };
        r.restart();
        r
    }

    fn url(&self) -> SecretUrl {
        SecretUrl::new(&format!("redis://127.0.0.1:{}", self.port))
    }

    /// Starts the server (again) on the same port and waits until it answers PING.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".to_owned());
        let child = Command::new(&bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (install redis-server, or set REDIS_SERVER): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT: a Redis that accepts connections but never answers.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    /// A plain connection for looking at what the backends wrote.
    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url().expose()).unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn quotas(count: u32, window: Duration) -> Quotas {
    let q = Quota { count, window };
    Quotas { login_ip: q, login_account: q, login_global: q, api_ip: q, api_user: q, api_key: q }
}

/// One Rampart instance's limiter and revocation set on `redis`, sharing one connection.
async fn instance(redis: &TestRedis, q: Quotas) -> (Limiter, Revocations) {
    let shared = SharedState::redis(&redis.url(), "rampart", None, q).await.unwrap();
    (shared.limiter, shared.revocations)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Polls `f` every 100 ms until it is true, for at most `limit`.
async fn eventually<F: AsyncFnMut() -> bool>(limit: Duration, mut f: F) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_instances_share_one_budget() {
    let redis = TestRedis::start();
    let q = quotas(5, Duration::from_secs(60));
    let (a, _) = instance(&redis, q).await;
    let (b, _) = instance(&redis, q).await;
    let client = ip("192.0.2.10");
    for i in 0..5 {
        let l = if i % 2 == 0 { &a } else { &b };
        assert_eq!(l.check(Bucket::LoginIp(client)).await, Ok(()), "check {i}");
    }
    for l in [&a, &b] {
        let refused = l.check(Bucket::LoginIp(client)).await.unwrap_err();
        assert_eq!(refused.policy, Policy::LoginIp);
        assert_eq!(refused.quota.count, 5);
        // 5 a minute: the next cell is due 12 s after the burst.
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(60), "{refused:?}");
        assert!(refused.retry_after > Duration::from_secs(10) && refused.retry_after <= Duration::from_secs(12));
    }
    // An IPv6 /64 is one client across instances too; other keys and policies are separate.
    for i in 0..5u16 {
        let l = if i % 2 == 0 { &a } else { &b };
        assert!(l.check(Bucket::ApiIp(ip(&format!("2001:db8:7:7::{:x}", i + 1)))).await.is_ok());
    }
    assert!(b.check(Bucket::ApiIp(ip("2001:db8:7:7:ffff::1"))).await.is_err());
    assert!(a.check(Bucket::ApiIp(client)).await.is_ok());
    assert!(a.check(Bucket::LoginAccount("alice@example.com")).await.is_ok());
    for _ in 0..5 {
        assert!(b.check(Bucket::LoginGlobal).await.is_ok());
    }
    assert_eq!(a.check(Bucket::LoginGlobal).await.unwrap_err().policy, Policy::LoginGlobal);
    assert!(!a.degraded().await && !b.degraded().await);

    // What Redis holds: IPs as client keys, emails only hashed, every key with an expiry.
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    assert!(keys.contains(&"rampart:rl:login-ip:192.0.2.10".to_owned()), "{keys:?}");
    assert!(keys.contains(&"rampart:rl:api-ip:2001:db8:7:7::".to_owned()), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("rampart:rl:login-account:")), "{keys:?}");
    assert!(keys.iter().all(|k| !k.contains("alice") && !k.contains("example")), "{keys:?}");
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query_async(&mut conn).await.unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{k}: {ttl}");
    }
}

#[tokio::test]
async fn a_refused_check_spends_nothing() {
    let redis = TestRedis::start();
    // 2 per 4 s: one cell back every 2 s.
    let q = quotas(2, Duration::from_secs(4));
    let (a, _) = instance(&redis, q).await;
    let (b, _) = instance(&redis, q).await;
    let client = ip("192.0.2.20");
    assert!(a.check(Bucket::LoginIp(client)).await.is_ok());
    assert!(b.check(Bucket::LoginIp(client)).await.is_ok());
    let refused_at = Instant::now();
    let first = a.check(Bucket::LoginIp(client)).await.unwrap_err();
    assert!(
        first.retry_after > Duration::from_millis(1500) && first.retry_after <= Duration::from_secs(2),
        "{first:?}"
    );
    let mut conn = redis.conn().await;
    let key = "rampart:rl:login-ip:192.0.2.20";
    let tat: String = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
    // Hammer the refused bucket from both instances until shortly before the next cell is due.
    let mut refusals = 0;
    while refused_at.elapsed() < first.retry_after - Duration::from_millis(500) {
        for l in [&a, &b] {
            let r = l.check(Bucket::LoginIp(client)).await.unwrap_err();
            assert!(r.retry_after <= first.retry_after, "the wait grew: {r:?} after {first:?}");
            refusals += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refusals > 20, "{refusals}");
    // The refusals wrote nothing...
    let now: String = redis::cmd("GET").arg(key).query_async(&mut conn).await.unwrap();
    assert_eq!(now, tat);
    // ...so the cell is back when it was due, and it is exactly one.
    tokio::time::sleep(first.retry_after.saturating_sub(refused_at.elapsed()) + Duration::from_millis(300)).await;
    assert!(b.check(Bucket::LoginIp(client)).await.is_ok());
    assert!(a.check(Bucket::LoginIp(client)).await.is_err());
}

#[tokio::test]
async fn a_revocation_is_seen_by_every_instance_and_expires() {
    let redis = TestRedis::start();
    let q = quotas(1, Duration::from_secs(60));
    let ((_, a), (_, b)) = (instance(&redis, q).await, instance(&redis, q).await);
    assert_eq!(b.is_revoked("sid-1").await, Revoked::No);
    a.revoke("sid-1", now_ms() + 1_500).await;
    assert_eq!(b.is_revoked("sid-1").await, Revoked::Yes, "at once, on the other instance");
    assert_eq!(a.is_revoked("sid-1").await, Revoked::Yes);
    assert_eq!(b.is_revoked("sid-2").await, Revoked::No);
    // Already expired: nothing to remember.
    a.revoke("sid-old", now_ms() - 1).await;
    assert_eq!(b.is_revoked("sid-old").await, Revoked::No);
    let mut conn = redis.conn().await;
    let exists: bool = redis::cmd("EXISTS").arg("rampart:revoked:sid-old").query_async(&mut conn).await.unwrap();
    assert!(!exists);
    // Redis forgets sid-1 when its last token has expired.
    assert!(eventually(Duration::from_secs(5), async || b.is_revoked("sid-1").await == Revoked::No).await);
    assert!(a.ping().await.is_ok() && !a.degraded().await);
}

#[tokio::test]
async fn while_redis_is_down_limits_are_per_instance_and_revocations_fail_safe() {
    let mut redis = TestRedis::start();
    let q = quotas(3, Duration::from_secs(60));
    let ((a, ra), (b, rb)) = (instance(&redis, q).await, instance(&redis, q).await);
    let horizon = now_ms() + 120_000;
    ra.revoke("sid-before", horizon).await;
    assert_eq!(rb.is_revoked("sid-before").await, Revoked::Yes);

    redis.kill();

    let outage = ip("192.0.2.30");
    for l in [&a, &b] {
        // Each instance falls back to its own budget: the same quota, so per instance, not unlimited.
        for i in 0..3 {
            assert_eq!(l.check(Bucket::LoginIp(outage)).await, Ok(()), "check {i}");
        }
        let refused = l.check(Bucket::LoginIp(outage)).await.unwrap_err();
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(20), "{refused:?}");
        assert!(l.degraded().await);
        assert!(l.ping().await.is_err());
    }
    // A login this instance revoked is known here; any other one is for the database to say.
    assert_eq!(ra.is_revoked("sid-before").await, Revoked::Yes);
    assert_eq!(rb.is_revoked("sid-before").await, Revoked::Unknown);
    assert_eq!(rb.is_revoked("sid-never").await, Revoked::Unknown);
    ra.revoke("sid-during", horizon).await;
    assert_eq!(ra.is_revoked("sid-during").await, Revoked::Yes);
    assert_eq!(rb.is_revoked("sid-during").await, Revoked::Unknown);
    let err = rb.ping().await.unwrap_err().to_string();
    assert!(!err.contains("127.0.0.1"), "{err}");
    assert!(ra.degraded().await && rb.degraded().await);

    redis.restart();

    for l in [&a, &b] {
        assert!(eventually(Duration::from_secs(20), async || l.ping().await.is_ok()).await, "no reconnect");
        assert!(!l.degraded().await);
    }
    for r in [&ra, &rb] {
        assert!(eventually(Duration::from_secs(20), async || r.ping().await.is_ok()).await, "no reconnect");
        assert!(!r.degraded().await);
    }
    // Back on the shared budget, in the fresh Redis: the bucket both instances had spent locally
    // is full again there, and is shared again.
    for l in [&a, &b, &a] {
        assert_eq!(l.check(Bucket::LoginIp(outage)).await, Ok(()));
    }
    assert!(b.check(Bucket::LoginIp(outage)).await.is_err());
    let mut conn = redis.conn().await;
    let exists: bool = redis::cmd("EXISTS").arg("rampart:rl:login-ip:192.0.2.30").query_async(&mut conn).await.unwrap();
    assert!(exists);
    // The fresh Redis lost every revocation; the instance that made them wrote them back when it
    // reconnected, including the one whose SET failed during the outage.
    assert_eq!(rb.is_revoked("sid-during").await, Revoked::Yes);
    assert_eq!(rb.is_revoked("sid-before").await, Revoked::Yes);
    assert_eq!(rb.is_revoked("sid-never").await, Revoked::No);
}

#[tokio::test]
async fn a_hung_redis_costs_a_request_at_most_the_timeout() {
    let redis = TestRedis::start();
    let q = quotas(2, Duration::from_secs(60));
    let (a, r) = instance(&redis, q).await;
    redis.signal("-STOP");
    let started = Instant::now();
    assert!(a.check(Bucket::ApiUser("u1")).await.is_ok());
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    // The next calls skip Redis for a while rather than each waiting out the timeout.
    let started = Instant::now();
    assert!(a.check(Bucket::ApiUser("u1")).await.is_ok());
    assert!(a.check(Bucket::ApiUser("u1")).await.is_err(), "local quota");
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    let started = Instant::now();
    assert_eq!(r.is_revoked("sid").await, Revoked::Unknown);
    assert!(r.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    redis.signal("-CONT");
    assert!(eventually(Duration::from_secs(20), async || a.ping().await.is_ok()).await);
    assert!(a.check(Bucket::ApiUser("u2")).await.is_ok());
    assert!(!a.degraded().await);
}

#[tokio::test]
async fn connect_errors_hide_the_password() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = SecretUrl::new(&format!("redis://rampart:s3cret-pw@127.0.0.1:{port}"));
    let q = quotas(1, Duration::from_secs(60));
    let started = Instant::now();
    // One connection for both backends, so one connect to look at.
    let Err(e) = SharedState::redis(&url, "rampart", None, q).await else { panic!("nothing listens there") };
    let e = e.to_string();
    assert!(!e.contains("s3cret-pw") && e.contains("rampart:***@127.0.0.1"), "{e}");
    assert!(e.ends_with("connection refused"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "start-up should fail fast: {:?}", started.elapsed());
    let Err(e) = SharedState::redis(&SecretUrl::new("nosuch://u:s3cret-pw@x"), "rampart", None, q).await else {
        panic!("bad scheme")
    };
    let e = e.to_string();
    assert!(!e.contains("s3cret-pw"), "{e}");
}

/// The HTTP layer awaits these inside axum handlers, which must be `Send`.
#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    async fn all(l: &Limiter, r: &Revocations) {
        let f = l.check(Bucket::LoginGlobal);
        send(&f);
        let f = r.is_revoked("s");
        send(&f);
        let f = r.revoke("s", 0);
        send(&f);
        let f = r.ping();
        send(&f);
    }
    let _ = all;
}

/// A bearer request's two checks in one round trip: a revoked login (revoked by another
/// instance) spends nothing of the user's budget; a live one spends one cell, shared.
#[tokio::test]
async fn the_bearer_check_refuses_revoked_logins_without_spending_and_shares_the_user_budget() {
    let redis = TestRedis::start();
    let q = quotas(3, Duration::from_secs(60));
    let ((a, ra), (b, rb)) = (instance(&redis, q).await, instance(&redis, q).await);
    rb.revoke("gone", now_ms() + 60_000).await;
    for _ in 0..5 {
        assert_eq!(a.check_bearer(&ra, "gone", "user-1").await, Ok(Revoked::Yes));
    }
    // Nothing was spent by the revoked token: the live login still has its three cells, shared.
    assert_eq!(a.check_bearer(&ra, "live", "user-1").await, Ok(Revoked::No));
    assert_eq!(b.check_bearer(&rb, "live", "user-1").await, Ok(Revoked::No));
    assert_eq!(a.check_bearer(&ra, "live", "user-1").await, Ok(Revoked::No));
    let refused = b.check_bearer(&rb, "live", "user-1").await.expect_err("the fourth cell");
    assert_eq!(refused.policy, Policy::ApiUser);
}

/// An instance's limiter and revocation set talk to Redis over one connection, and so share one
/// view of whether it answers.
#[tokio::test]
async fn an_instance_holds_one_connection_for_both_backends() {
    let redis = TestRedis::start();
    let (limiter, revocations) = instance(&redis, quotas(5, Duration::from_secs(60))).await;
    assert!(limiter.check(Bucket::LoginGlobal).await.is_ok());
    revocations.revoke("sid-1", now_ms() + 60_000).await;
    assert_eq!(revocations.is_revoked("sid-1").await, Revoked::Yes);
    let mut conn = redis.conn().await;
    let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut conn).await.unwrap();
    // This test's own connection, and the instance's one.
    assert_eq!(clients.lines().count(), 2, "{clients}");
}
