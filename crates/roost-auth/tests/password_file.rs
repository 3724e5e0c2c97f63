//! Password files: Mosquitto compatibility (with the real mosquitto_passwd
//! and broker), the authenticator's answers, reload and the passwd edits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{authenticate, client};
use roost_auth::password::{HashKind, delete_user, set_password};
use roost_auth::{FileError, PasswordFile, PasswordFileConfig, UnknownUser};
use roost_hooks::{AuthResult, ReasonCode};

const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

fn have_mosquitto_passwd() -> bool {
    Path::new(MOSQUITTO_PASSWD).exists()
}

fn mosquitto_passwd(args: &[&str]) {
    let status = Command::new(MOSQUITTO_PASSWD).args(args).status().unwrap();
    assert!(status.success(), "mosquitto_passwd {args:?} failed");
}

fn refuse_bad_credentials() -> AuthResult {
    AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
}

#[tokio::test]
async fn file_written_by_mosquitto_passwd_is_accepted() {
    // A missing tool fails the test: passing without checking anything
    // would hide that the compatibility was never verified.
    assert!(
        have_mosquitto_passwd(),
        "{MOSQUITTO_PASSWD} missing: run scripts/install-test-deps.sh (Debian package mosquitto)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    let p = path.to_str().unwrap();
    // Default ($7$, PBKDF2-SHA512, 101 iterations, 12-byte salt) and legacy $6$.
    mosquitto_passwd(&["-c", "-b", p, "alice", "s3cret:with:colons"]);
    mosquitto_passwd(&["-H", "sha512", "-b", p, "bob", "hunter2"]);
    mosquitto_passwd(&["-H", "sha512-pbkdf2", "-b", p, "carol", "pässwörd"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("alice:$7$101$"), "{text}");
    assert!(text.contains("bob:$6$"), "{text}");

    let file = PasswordFile::load(&path).unwrap();
    assert_eq!(file.len(), 3);
    let alice = client("c1", Some("alice"));
    assert_eq!(
        authenticate(&file, &alice, Some(b"s3cret:with:colons")).await,
        AuthResult::Accept(Default::default())
    );
    assert_eq!(
        authenticate(&file, &alice, Some(b"s3cret")).await,
        refuse_bad_credentials()
    );
    let bob = client("c2", Some("bob"));
    assert_eq!(
        authenticate(&file, &bob, Some(b"hunter2")).await,
        AuthResult::Accept(Default::default())
    );
    assert_eq!(
        authenticate(&file, &bob, Some(b"hunter3")).await,
        refuse_bad_credentials()
    );
    assert!(file.check("carol", "pässwörd".as_bytes()));
    assert!(!file.check("carol", b"passwort"));
}

#[tokio::test]
async fn unknown_user_policy_and_anonymous_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    set_password(&path, "alice", "pw", HashKind::Pbkdf2Sha512).unwrap();

    let refuse = PasswordFile::from_config(&PasswordFileConfig {
        path: path.clone(),
        unknown_user: UnknownUser::Refuse,
    })
    .unwrap();
    let ignore = PasswordFile::load(&path)
        .unwrap()
        .with_unknown_user(UnknownUser::Ignore);
    let mallory = client("m", Some("mallory"));
    assert_eq!(
        authenticate(&refuse, &mallory, Some(b"pw")).await,
        refuse_bad_credentials()
    );
    assert_eq!(
        authenticate(&ignore, &mallory, Some(b"pw")).await,
        AuthResult::Ignore
    );

    // A known user is refused whatever the policy; no password = refused.
    let alice = client("a", Some("alice"));
    assert_eq!(
        authenticate(&ignore, &alice, Some(b"nope")).await,
        refuse_bad_credentials()
    );
    assert_eq!(
        authenticate(&ignore, &alice, None).await,
        refuse_bad_credentials()
    );

    // No user name: the anonymous policy of the broker decides.
    let anonymous = client("anon", None);
    assert_eq!(
        authenticate(&refuse, &anonymous, None).await,
        AuthResult::Ignore
    );
}

/// The fastest of a few runs: the one least disturbed by other load.
async fn fastest(file: &PasswordFile, user: &str, password: Option<&[u8]>) -> Duration {
    let c = client("timing", Some(user));
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let result = authenticate(file, &c, password).await;
        best = best.min(started.elapsed());
        assert_eq!(result, refuse_bad_credentials());
    }
    best
}

#[tokio::test]
async fn refusals_cost_a_real_check_whether_or_not_the_user_exists() {
    // A slow hash (PBKDF2, 100,000 iterations: tens of ms) makes the cost of
    // one check stand far above everything else an answer does.
    let mut salt = vec![0u8; 12];
    salt[0] = 7;
    let hash = roost_auth::password::PasswordHash::pbkdf2(b"secret", salt, 100_000);
    let file = PasswordFile::from_text("timing", &format!("alice:{}\n", hash.encode())).unwrap();

    let wrong = fastest(&file, "alice", Some(b"wrong")).await;
    let missing = fastest(&file, "alice", None).await;
    let unknown = fastest(&file, "mallory", Some(b"wrong")).await;
    let unknown_no_password = fastest(&file, "mallory", None).await;
    // Without the decoy check these answers take microseconds: an attacker
    // learns that "alice" exists by leaving the password out, or by timing
    // a wrong one. A factor of 4 leaves room for noise on a busy machine.
    for (what, took) in [
        ("known user without a password", missing),
        ("unknown user", unknown),
        ("unknown user without a password", unknown_no_password),
    ] {
        assert!(
            took * 4 >= wrong,
            "{what}: {took:?}, a wrong password for a known user: {wrong:?}"
        );
    }
    assert!(file.check("alice", b"secret"));
    assert!(!file.check("mallory", b"secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_checks_run_at_most_one_per_cpu_at_once() {
    // Anyone can start a check by naming a user; each holds a blocking
    // thread (and an argon2id hash's memory). Many at once must queue.
    let hash = roost_auth::password::PasswordHash::pbkdf2(b"secret", vec![1; 12], 20_000);
    let file = std::sync::Arc::new(
        PasswordFile::from_text("bound", &format!("alice:{}\n", hash.encode())).unwrap(),
    );
    let limit = file.expensive_check_limit();
    let mut tasks = Vec::new();
    for i in 0..(limit * 4 + 4) {
        let file = std::sync::Arc::clone(&file);
        tasks.push(tokio::spawn(async move {
            let c = client(&format!("c{i}"), Some("alice"));
            authenticate(&*file, &c, Some(b"wrong")).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), refuse_bad_credentials());
    }
    let peak = file.expensive_check_peak();
    assert!(peak >= 1, "the checks ran on the bounded path");
    assert!(peak <= limit, "{peak} checks at once, limit {limit}");
}

#[test]
fn config_rejects_unknown_keys_and_reads_the_policy() {
    let c: PasswordFileConfig = toml::from_str("path = \"/x\"\nunknown_user = \"ignore\"").unwrap();
    assert_eq!(c.unknown_user, UnknownUser::Ignore);
    let c: PasswordFileConfig = toml::from_str("path = \"/x\"").unwrap();
    assert_eq!(c.unknown_user, UnknownUser::Refuse);
    assert!(toml::from_str::<PasswordFileConfig>("path = \"/x\"\nbogus = 1").is_err());
}

#[test]
fn parse_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    let good = {
        set_password(&path, "ok", "pw", HashKind::Pbkdf2Sha512).unwrap();
        std::fs::read_to_string(&path).unwrap()
    };
    let cases = [
        ("# comment\n\nno-colon-here\n", 3, "expected user:hash"),
        ("u:$5$abc$def\n", 1, "unknown hash format"),
        ("u:$7$0$AAAA$AAAA\n", 1, "positive integer"),
        ("u:$7$101$AAAA$AAAA\n", 1, "12 or 64"),
        (":$7$101$AAAA$AAAA\n", 1, "empty user name"),
    ];
    for (text, line, what) in cases {
        std::fs::write(&path, text).unwrap();
        let err = PasswordFile::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, FileError::Parse { line: l, .. } if l == line),
            "{msg}"
        );
        assert!(
            msg.starts_with(&format!("{}:{line}: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains(what), "{msg}");
    }
    // A duplicate user is an error on the second line.
    std::fs::write(&path, format!("{good}{good}")).unwrap();
    let msg = PasswordFile::load(&path).unwrap_err().to_string();
    assert!(msg.contains(":2: ") && msg.contains("twice"), "{msg}");
}

#[test]
fn errors_and_debug_never_show_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    set_password(&path, "alice", "pw", HashKind::Pbkdf2Sha512).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let hash_part = text.trim().rsplit('$').next().unwrap().to_owned();
    let file = PasswordFile::load(&path).unwrap();
    assert!(!format!("{file:?}").contains(&hash_part));
    std::fs::write(&path, format!("bob:$7$101$!!!!$%{hash_part}\n")).unwrap();
    let err = PasswordFile::load(&path).unwrap_err().to_string();
    assert!(!err.contains(&hash_part), "{err}");
}

#[tokio::test]
async fn reload_applies_a_good_file_and_keeps_entries_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    set_password(&path, "alice", "one", HashKind::Pbkdf2Sha512).unwrap();
    let file = PasswordFile::load(&path).unwrap();
    assert!(file.check("alice", b"one"));

    set_password(&path, "alice", "two", HashKind::Pbkdf2Sha512).unwrap();
    file.reload().unwrap();
    assert!(file.check("alice", b"two"));
    assert!(!file.check("alice", b"one"));

    std::fs::write(&path, "alice:garbage\n").unwrap();
    let err = file.reload().unwrap_err();
    assert!(err.to_string().contains(":1: "), "{err}");
    assert!(file.check("alice", b"two"), "old entries stay in force");

    std::fs::remove_file(&path).unwrap();
    assert!(matches!(file.reload(), Err(FileError::Io { .. })));
    assert!(file.check("alice", b"two"));
}

#[tokio::test]
async fn reload_of_a_file_caught_mid_rewrite_keeps_the_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    set_password(&path, "alice", "pw", HashKind::Pbkdf2Sha512).unwrap();
    let file = PasswordFile::load(&path).unwrap();
    // `cat new > passwd` truncates first: a reload in between sees 0 bytes.
    std::fs::write(&path, "").unwrap();
    let err = file.reload().unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(file.check("alice", b"pw"), "the old entries stay in force");
    assert_eq!(file.len(), 1);
    // ... or a line cut short: a parse error, the old entries stay.
    let other = dir.path().join("other");
    set_password(&other, "alice", "new", HashKind::Pbkdf2Sha512).unwrap();
    let line = std::fs::read_to_string(&other).unwrap();
    std::fs::write(&path, &line[..line.len() / 2]).unwrap();
    assert!(file.reload().is_err());
    assert!(file.check("alice", b"pw"));
    // A file meant to list nobody says so with a comment.
    std::fs::write(&path, "# nobody\n").unwrap();
    file.reload().unwrap();
    assert!(file.is_empty());
}

#[cfg(unix)]
#[test]
fn passwd_edits_are_atomic_0600_and_keep_other_lines() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    std::fs::write(&path, "# users\nzed:$6$AAAAAAAAAAAAAAAA$").unwrap();
    // The file above is not loadable (bad hash), but editing keeps it as text.
    set_password(&path, "alice", "a", HashKind::Pbkdf2Sha512).unwrap();
    set_password(&path, "bob", "b", HashKind::Argon2id).unwrap();
    set_password(&path, "alice", "a2", HashKind::Pbkdf2Sha512).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# users");
    assert!(lines[1].starts_with("zed:"));
    assert!(lines[2].starts_with("alice:$7$101$"));
    assert!(lines[3].starts_with("bob:$argon2id$"));
    assert_eq!(lines.len(), 4);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    assert!(delete_user(&path, "zed").unwrap());
    assert!(!delete_user(&path, "nobody").unwrap());
    let file = PasswordFile::load(&path).unwrap();
    assert_eq!(file.len(), 2);
    assert!(file.check("alice", b"a2"));
    assert!(file.check("bob", b"b"));
    assert!(set_password(&path, "has:colon", "x", HashKind::Pbkdf2Sha512).is_err());
    assert!(set_password(&path, "", "x", HashKind::Pbkdf2Sha512).is_err());
}

#[tokio::test]
async fn argon2id_entries_verify_on_a_blocking_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    set_password(&path, "alice", "pw", HashKind::Argon2id).unwrap();
    let file = PasswordFile::load(&path).unwrap();
    let alice = client("a", Some("alice"));
    assert_eq!(
        authenticate(&file, &alice, Some(b"pw")).await,
        AuthResult::Accept(Default::default())
    );
    assert_eq!(
        authenticate(&file, &alice, Some(b"px")).await,
        refuse_bad_credentials()
    );
}

// ---- optional: the real Mosquitto broker accepts a file we wrote -------

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// MQTT 3.1.1 CONNECT with user name and password; returns the CONNACK return code.
fn connect_code(port: u16, user: &str, password: &str) -> Option<u8> {
    let mut payload = Vec::new();
    for field in ["roost-auth-test", user, password] {
        payload.extend_from_slice(&(field.len() as u16).to_be_bytes());
        payload.extend_from_slice(field.as_bytes());
    }
    let mut variable = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0b1100_0010, 0, 30];
    variable.extend_from_slice(&payload);
    let mut packet = vec![0x10, variable.len() as u8];
    packet.extend_from_slice(&variable);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(&packet).ok()?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).ok()?;
    (connack[0] == 0x20).then_some(connack[3])
}

#[test]
fn mosquitto_broker_accepts_a_file_we_wrote() {
    assert!(
        Path::new("/usr/sbin/mosquitto").exists(),
        "/usr/sbin/mosquitto missing: run scripts/install-test-deps.sh (Debian package mosquitto)"
    );
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    set_password(&passwd, "alice", "wonderland", HashKind::Pbkdf2Sha512).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            passwd.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = connect_code(port, "alice", "wonderland") {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto did not answer within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, 0, "mosquitto refused our $7$ hash");
    assert_eq!(
        connect_code(port, "alice", "wrong"),
        Some(5),
        "wrong password is not authorised"
    );
}
