//! The systemd unit shipped in `deploy/`: systemd accepts it, and its sandbox leaves little
//! exposed (`systemd-analyze security` rates it), so an operator who installs it as it is gets
//! the restrictions docs/deployment.md describes.

use std::process::Command;

/// The unit with `ExecStart` pointing at the binary under test (verify checks that it exists).
fn unit_under_test(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rampart.service");
    let text = std::fs::read_to_string(repo).unwrap();
    let text = text.replace("/usr/local/bin/rampart", env!("CARGO_BIN_EXE_rampart"));
    let path = dir.join("rampart.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        // The suite runs where systemd's tools may be absent (a container without systemd).
        eprintln!("systemd-analyze not found: the unit was not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let verify = Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr).into_owned() + &String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");

    let security = Command::new("systemd-analyze").arg("security").arg("--offline=yes").arg(&unit).output().unwrap();
    let out = String::from_utf8_lossy(&security.stdout).into_owned();
    let level: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for rampart.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {out}"));
    // systemd rates 0 (locked down) to 10 (exposed); below 2 is "OK".
    assert!(level < 2.0, "exposure level {level}:\n{out}");
}
