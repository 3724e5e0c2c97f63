//! `roost check-config` loads what a start would load and reports every
//! problem: one test per missing file (certificate, key, password file, ACL
//! file), a Mosquitto ACL, a bad log filter, all of them at once, and the
//! repository's `roost.example.toml`. Also the start-up errors a new user
//! meets first: a mosquitto.conf given to `-c`, an unquoted `bind`, a host
//! name in `bind`, a Redis URL without a scheme, `--log-level verbose`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::pki::Pki;
use roost_testkit::packets::unique_id;

const ROOST: &str = env!("CARGO_BIN_EXE_roost");

/// A directory of its own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(unique_id("roost-check"));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn missing(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn roost(args: &[&str], cwd: &Path) -> Output {
    Command::new(ROOST)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run roost")
}

/// `roost check-config` on `toml`: exit code and stderr.
fn check(dir: &TempDir, toml: &str) -> (Option<i32>, String) {
    let file = dir.file("roost.toml", toml);
    let out = roost(&["check-config", &file], &dir.0);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tls_listener(cert: &str, key: &str) -> String {
    format!(
        "[[listeners]]\nkind = \"tls\"\nbind = \"127.0.0.1:0\"\n\
         [listeners.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n"
    )
}

#[test]
fn a_missing_certificate_file_is_reported() {
    let dir = TempDir::new();
    let pki = Pki::new();
    let cert = dir.missing("nope.crt");
    let (code, err) = check(&dir, &tls_listener(&cert, &pki.path("server.key")));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tls.cert_file") && err.contains(&cert),
        "{err}"
    );
    assert!(
        !err.contains("mqtts://127.0.0.1:0: mqtts://"),
        "the listener is named once: {err}"
    );
}

#[test]
fn a_missing_key_file_is_reported() {
    let dir = TempDir::new();
    let pki = Pki::new();
    let key = dir.missing("nope.key");
    let (code, err) = check(&dir, &tls_listener(&pki.path("server.crt"), &key));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("tls.key_file") && err.contains(&key), "{err}");
}

#[test]
fn a_missing_password_file_is_reported() {
    let dir = TempDir::new();
    let path = dir.missing("passwd");
    let (code, err) = check(&dir, &format!("[auth.password_file]\npath = \"{path}\"\n"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("auth.password_file") && err.contains(&path),
        "{err}"
    );
}

#[test]
fn a_missing_acl_file_is_reported() {
    let dir = TempDir::new();
    let path = dir.missing("acl");
    let (code, err) = check(&dir, &format!("[auth.acl_file]\npath = \"{path}\"\n"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("auth.acl_file") && err.contains(&path),
        "{err}"
    );
}

#[test]
fn a_mosquitto_acl_file_is_reported_as_one() {
    let dir = TempDir::new();
    let path = dir.file("acl", "user alice\ntopic readwrite home/#\n");
    let (code, err) = check(&dir, &format!("[auth.acl_file]\npath = \"{path}\"\n"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Mosquitto ACL"), "{err}");
    assert!(err.contains("coming-from-mosquitto"), "{err}");
}

#[test]
fn a_bad_log_filter_is_reported_with_the_valid_levels() {
    let dir = TempDir::new();
    let (code, err) = check(&dir, "[log]\nlevel = \"verbose\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("verbose") && err.contains("error, warn, info, debug, trace"));
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let dir = TempDir::new();
    let pki = Pki::new();
    let toml = format!(
        "{}[log]\nlevel = \"verbose\"\n[auth.password_file]\npath = \"{}\"\n\
         [auth.acl_file]\npath = \"{}\"\n",
        tls_listener(&dir.missing("a.crt"), &pki.path("server.key")),
        dir.missing("passwd"),
        dir.missing("acl"),
    );
    let (code, err) = check(&dir, &toml);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("4 problems"), "{err}");
}

#[test]
fn check_config_binds_no_port_and_creates_no_data_directory() {
    let dir = TempDir::new();
    // A port that is taken: check-config must not try it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, err) = check(
        &dir,
        &format!("[[listeners]]\nbind = \"127.0.0.1:{port}\"\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(!dir.0.join("roost-data").exists());
}

#[test]
fn the_example_configuration_in_the_repository_is_accepted() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../roost.example.toml");
    let root = example.parent().unwrap();
    let out = roost(&["check-config", "roost.example.toml"], root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_mosquitto_conf_given_to_dash_c_is_named_as_one() {
    let dir = TempDir::new();
    let conf = dir.file(
        "mosquitto.conf",
        "listener 1883\nallow_anonymous true\npersistence true\n",
    );
    let out = roost(&["-c", &conf], &dir.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("looks like a mosquitto.conf"), "{err}");
    assert!(err.contains("coming-from-mosquitto"), "{err}");
}

#[test]
fn an_unquoted_bind_address_says_to_quote_it() {
    let dir = TempDir::new();
    let (code, err) = check(&dir, "[[listeners]]\nbind = 127.0.0.1:1883\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bind = \"127.0.0.1:1883\""), "{err}");
}

#[test]
fn a_host_name_in_bind_is_resolved() {
    let dir = TempDir::new();
    let (code, err) = check(&dir, "[[listeners]]\nbind = \"localhost:1883\"\n");
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check(&dir, "[[listeners]]\nbind = \"no such host:1883\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no such host"), "{err}");
}

#[test]
fn a_redis_url_without_a_scheme_says_which_scheme_to_write() {
    let dir = TempDir::new();
    let (code, err) = check(
        &dir,
        "[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"127.0.0.1:6379\"\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("redis://127.0.0.1:6379"), "{err}");
    let out = roost(
        &["--store", "redis", "--redis-url", "127.0.0.1:6379"],
        &dir.0,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("redis://127.0.0.1:6379"), "{err}");
}

#[test]
fn an_unknown_log_level_is_refused_at_start_with_the_valid_levels() {
    let dir = TempDir::new();
    let out = roost(&["-p", "0", "--log-level", "verbose"], &dir.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error, warn, info, debug, trace, off"),
        "{err}"
    );
}

#[test]
fn a_start_that_fails_creates_no_data_directory() {
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = roost(&["-p", &port], &dir.0);
    assert!(!out.status.success());
    assert!(
        !dir.0.join("roost-data").exists(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_misspelt_key_names_the_key_meant() {
    let dir = TempDir::new();
    let (code, err) = check(&dir, "[mqtt]\nmax_inflght = 5\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("did you mean `max_inflight`?"), "{err}");
}

#[test]
fn a_port_held_by_another_process_says_what_to_do() {
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = roost(&["-p", &port, "--store", "memory"], &dir.0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("pick another with -p"), "{err}");
}
