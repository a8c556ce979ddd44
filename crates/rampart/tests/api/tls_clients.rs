//! TLS from Rampart to PostgreSQL (`sslmode=verify-full&sslrootcert=...` in `database.url`) and
//! to Redis (`rediss://` with `redis.tls_ca_file`): private servers started here with
//! certificates from a test CA, which only accept TLS; and a server whose certificate does not
//! chain to the configured CA refused at start-up (exit 1, one line saying why).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::tls::TestCa;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Debian's PostgreSQL binaries (the newest installed major version).
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin").join(name)).find(|p| p.exists())
}

/// A command as the `postgres` user when we are root (initdb and postgres refuse to run as root).
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL of the test's own in a temp dir: `ssl = on` with a certificate from `ca`, and
/// only TLS accepted over TCP (`hostssl` only), so a server that works through it used TLS.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    pg_ctl: PathBuf,
}

impl PrivatePostgres {
    fn start(ca: &TestCa) -> Option<Self> {
        let (initdb, pg_ctl) = (pg_bin("initdb")?, pg_bin("pg_ctl")?);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let leaf = ca.leaf(10);
        let (cert, key) = leaf.write(dir.path(), "pg");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // PostgreSQL refuses a key others can read.
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = as_pg_user(&initdb)
            .args(["-D", &data.display().to_string(), "-U", "postgres", "--auth=trust", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nssl = on\nssl_cert_file = '{c}'\nssl_key_file = '{k}'\nfsync = off\n",
            d = dir.path().display(),
            c = cert.display(),
            k = key.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        // TLS or nothing over TCP.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let log = dir.path().join("pg.log");
        let out = as_pg_user(&pg_ctl)
            .args(["-D", &data.display().to_string(), "-l", &log.display().to_string(), "-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_port(port, "postgres");
        Some(Self { dir, port, pg_ctl })
    }

    fn url(&self, ca: &Path) -> String {
        format!("postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}", self.port, ca.display())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_pg_user(&self.pg_ctl).args(["-D", &data.display().to_string(), "-m", "immediate", "stop"]).output();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A Redis of the test's own that listens only on a TLS port, with a certificate from `ca`.
struct PrivateTlsRedis {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl PrivateTlsRedis {
    fn start(ca: &TestCa) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ca.leaf(20).write(dir.path(), "redis");
        let ca_path = ca.write(dir.path(), "ca.pem");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &cert.display().to_string(), "--tls-key-file", &key.display().to_string()])
            .args(["--tls-ca-cert-file", &ca_path.display().to_string(), "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        wait_port(port, "redis-server --tls-port");
        Self { _dir: dir, port, child }
    }
    fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }
}

impl Drop for PrivateTlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serves_through_postgres_and_redis_over_verified_tls() {
    let ca = TestCa::new("rampart services CA");
    let Some(pg) = PrivatePostgres::start(&ca) else {
        assert!(std::env::var("CI").is_err(), "PostgreSQL's initdb/pg_ctl are not installed");
        eprintln!("no PostgreSQL binaries: TLS to PostgreSQL not tested");
        return;
    };
    let redis = PrivateTlsRedis::start(&ca);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let ca_path = ca.write(dir.path(), "ca.pem");
    let url = pg.url(&ca_path);
    let app = TestApp::builder()
        .in_dir(dir.clone())
        .redis(&redis.url())
        .env("REDIS__TLS_CA_FILE", &ca_path.display().to_string())
        .env("DATABASE__URL", &url)
        .env("DATABASE__MIGRATE_URL", &url)
        .spawn()
        .await;
    // Readiness asks both the database and Redis.
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let user = app.registered_user().await;
    let me = app.get_bearer("/auth/me", &user.token).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert!(app.logs().contains("shared through redis"), "{}", app.logs());
}

/// A PostgreSQL or Redis whose certificate chains to another CA than the configured one: the
/// server does not start, and says which connection and why, without a password.
#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused_at_start() {
    let ca = TestCa::new("rampart services CA");
    let stranger = TestCa::new("a CA nobody configured");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wrong_ca = stranger.write(d, "wrong-ca.pem");
    let config = |database: &str, redis: &str| {
        let p = d.join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &p,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n[database]\nurl = \"{database}\"\n[auth]\nkeys_dir = \"{}/keys\"\n{redis}",
                d.display()
            ),
        )
        .unwrap();
        p.display().to_string()
    };
    let sqlite = format!("sqlite://{}/r.db", d.display());

    let redis = PrivateTlsRedis::start(&ca);
    let cfg =
        config(&sqlite, &format!("[redis]\nurl = \"{}\"\ntls_ca_file = \"{}\"\n", redis.url(), wrong_ca.display()));
    let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, d, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redis") && err.contains("certificate is not trusted"), "{err}");
    // With the right CA the same server is accepted (what was refused was the chain).
    let right_ca = ca.write(d, "ca.pem");
    let cfg =
        config(&sqlite, &format!("[redis]\nurl = \"{}\"\ntls_ca_file = \"{}\"\n", redis.url(), right_ca.display()));
    let (code, _, err) = run_cli(&["check", "--config", &cfg], None, d, &[]);
    assert_eq!(code, 0, "{err}");

    let Some(pg) = PrivatePostgres::start(&ca) else {
        assert!(std::env::var("CI").is_err(), "PostgreSQL's initdb/pg_ctl are not installed");
        return;
    };
    let url = pg.url(&wrong_ca).replace("postgres@", "postgres:Pg-Secret-7@");
    let cfg = config(&url, "");
    let (code, _, err) = run_cli(&["serve", "--config", &cfg], None, d, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("database") && err.to_lowercase().contains("certificate"), "{err}");
    assert!(!err.contains("Pg-Secret-7"), "{err}");
}
