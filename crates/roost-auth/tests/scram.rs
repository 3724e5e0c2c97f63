//! SCRAM-SHA-256/512 enhanced authentication against an independent client
//! (Python hashlib/hmac, tests/scram_client.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::client;
use roost_auth::scram::{DEFAULT_SCRAM_ITERATIONS, set_scram_password};
use roost_auth::{FileError, Mechanism, ScramAuthenticator, ScramConfig, ScramCredentials};
use roost_hooks::{AuthExchange, AuthStep, EnhancedAuthenticator, ReasonCode};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scram_client.py");

fn python() -> Option<&'static str> {
    ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn alg(m: Mechanism) -> &'static str {
    match m {
        Mechanism::Sha256 => "sha256",
        Mechanism::Sha512 => "sha512",
    }
}

/// A credentials line computed by the Python client.
fn python_line(
    py: &str,
    m: Mechanism,
    user: &str,
    password: &str,
    iterations: u32,
    salt_b64: &str,
) -> String {
    let out = Command::new(py)
        .args([
            SCRIPT,
            "derive",
            alg(m),
            user,
            password,
            &iterations.to_string(),
            salt_b64,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn step(ex: &mut Box<dyn AuthExchange>, data: &[u8]) -> AuthStep {
    ex.step(Some(Bytes::copy_from_slice(data))).await
}

/// Runs the Python client against one exchange; returns the server's last
/// step and whether the client verified the server signature.
async fn python_login(
    py: &str,
    auth: &ScramAuthenticator,
    m: Mechanism,
    user: &str,
    password: &str,
) -> (AuthStep, bool) {
    let mut child = Command::new(py)
        .args([SCRIPT, "login", alg(m), user, password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut ex = auth
        .begin(m.name(), &client("c", None))
        .expect("method supported");

    stdout.read_line(&mut line).unwrap();
    let server_first = match step(&mut ex, line.trim().as_bytes()).await {
        AuthStep::Continue(d) => d,
        other => panic!("expected server-first, got {other:?}"),
    };
    stdin.write_all(&server_first).unwrap();
    stdin.write_all(b"\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let last = step(&mut ex, line.trim().as_bytes()).await;
    let server_final = match &last {
        AuthStep::Success { data: Some(d), .. } => d.clone(),
        _ => Bytes::from_static(b"v=none"),
    };
    stdin.write_all(&server_final).unwrap();
    stdin.write_all(b"\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    drop(stdin);
    let _ = child.wait();
    (last, line.trim() == "OK")
}

#[tokio::test]
async fn python_client_authenticates_with_both_mechanisms_and_verifies_the_server() {
    let py = python().expect("python3 is needed for the independent SCRAM client");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scram");
    // Credentials computed by the independent implementation.
    let lines = [
        python_line(
            py,
            Mechanism::Sha256,
            "alice",
            "correct horse",
            4096,
            "c2FsdHNhbHRzYWx0",
        ),
        python_line(
            py,
            Mechanism::Sha512,
            "alice",
            "correct horse",
            10000,
            "QSBkaWZmZXJlbnQgc2FsdA==",
        ),
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let auth = ScramAuthenticator::from_config(&ScramConfig {
        credentials_file: path,
        unknown_user_iterations: 4096,
    })
    .unwrap();
    assert_eq!(auth.len(), 2);
    for m in Mechanism::ALL {
        let (last, server_verified) = python_login(py, &auth, m, "alice", "correct horse").await;
        match last {
            AuthStep::Success { grant, .. } => assert_eq!(grant.username.as_deref(), Some("alice")),
            other => panic!("{m:?}: expected success, got {other:?}"),
        }
        assert!(
            server_verified,
            "{m:?}: the client rejected the server signature"
        );
    }
}

#[tokio::test]
async fn derive_matches_the_independent_derivation() {
    let Some(py) = python() else { return };
    for m in Mechanism::ALL {
        let salt = b"0123456789abcdef";
        let ours = ScramCredentials::derive(m, b"pencil", salt, 4096).to_line("user");
        let theirs = python_line(py, m, "user", "pencil", 4096, "MDEyMzQ1Njc4OWFiY2RlZg==");
        assert_eq!(ours, theirs, "{m:?}");
    }
}

#[tokio::test]
async fn wrong_password_fails_after_the_exchange() {
    let Some(py) = python() else { return };
    let auth = ScramAuthenticator::new();
    auth.insert(
        "bob",
        ScramCredentials::generate(Mechanism::Sha256, b"right", 4096),
    );
    let (last, verified) = python_login(py, &auth, Mechanism::Sha256, "bob", "wrong").await;
    assert_eq!(last, AuthStep::Fail(ReasonCode::NOT_AUTHORIZED));
    assert!(!verified);
}

#[tokio::test]
async fn unknown_user_gets_a_believable_exchange_then_fails() {
    let auth = ScramAuthenticator::new();
    auth.insert(
        "bob",
        ScramCredentials::generate(Mechanism::Sha256, b"pw", DEFAULT_SCRAM_ITERATIONS),
    );
    let mut salts = Vec::new();
    for _ in 0..2 {
        let mut ex = auth.begin("SCRAM-SHA-256", &client("c", None)).unwrap();
        let AuthStep::Continue(first) = step(&mut ex, b"n,,n=nobody,r=abcdef").await else {
            panic!("an unknown user must still get server-first");
        };
        let first = String::from_utf8(first.to_vec()).unwrap();
        let attrs: Vec<&str> = first.split(',').collect();
        assert!(attrs[0].starts_with("r=abcdef"));
        assert_eq!(attrs[2], format!("i={DEFAULT_SCRAM_ITERATIONS}"));
        salts.push(attrs[1].to_owned());
        let nonce = &attrs[0][2..];
        let fin = format!("c=biws,r={nonce},p={}", "A".repeat(43) + "=");
        assert_eq!(
            step(&mut ex, fin.as_bytes()).await,
            AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
        );
    }
    assert_eq!(
        salts[0], salts[1],
        "the stand-in salt is stable, like a real one"
    );
}

#[tokio::test]
async fn reauthentication_is_a_fresh_exchange() {
    let Some(py) = python() else { return };
    let auth = ScramAuthenticator::new();
    auth.insert(
        "carol",
        ScramCredentials::generate(Mechanism::Sha512, b"pw", 4096),
    );
    for _ in 0..2 {
        let (last, verified) = python_login(py, &auth, Mechanism::Sha512, "carol", "pw").await;
        assert!(matches!(last, AuthStep::Success { .. }), "{last:?}");
        assert!(verified);
    }
}

#[tokio::test]
async fn server_nonces_differ_between_exchanges() {
    let auth = ScramAuthenticator::new();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let mut ex = auth.begin("SCRAM-SHA-256", &client("c", None)).unwrap();
        let AuthStep::Continue(first) = step(&mut ex, b"n,,n=u,r=same").await else {
            panic!()
        };
        nonces.push(
            String::from_utf8(first.to_vec())
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_ne!(nonces[0], nonces[1]);
}

#[tokio::test]
async fn tampered_or_malformed_messages_fail() {
    let auth = ScramAuthenticator::new();
    auth.insert(
        "u",
        ScramCredentials::generate(Mechanism::Sha256, b"pw", 4096),
    );
    let begin = || auth.begin("SCRAM-SHA-256", &client("c", None)).unwrap();

    // No client-first at all, channel binding, and garbage.
    for first in [&b""[..], b"p=tls-unique,,n=u,r=x", b"\xff\xfe", b"n,,n=u"] {
        let mut ex = begin();
        assert_eq!(
            step(&mut ex, first).await,
            AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
        );
    }
    let mut ex = begin();
    assert_eq!(
        ex.step(None).await,
        AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
    );

    // Wrong combined nonce, wrong channel-binding echo.
    for bad in ["c=biws,r=othernonce,p=AAAA", "c=eSws,r={n},p=AAAA"] {
        let mut ex = begin();
        let AuthStep::Continue(first) = step(&mut ex, b"n,,n=u,r=abc").await else {
            panic!()
        };
        let first = String::from_utf8(first.to_vec()).unwrap();
        let nonce = &first.split(',').next().unwrap()[2..];
        let msg = bad.replace("{n}", nonce);
        assert_eq!(
            step(&mut ex, msg.as_bytes()).await,
            AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
        );
        // After the end, anything more is a protocol error.
        assert_eq!(
            step(&mut ex, b"x").await,
            AuthStep::Fail(ReasonCode::PROTOCOL_ERROR)
        );
    }
}

#[test]
fn unsupported_method_is_not_begun() {
    let auth = ScramAuthenticator::new();
    assert!(auth.begin("SCRAM-SHA-1", &client("c", None)).is_none());
    assert!(auth.begin("scram-sha-256", &client("c", None)).is_none());
    assert!(auth.begin("SCRAM-SHA-256", &client("c", None)).is_some());
}

#[test]
fn credentials_file_errors_name_the_line_and_reload_keeps_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scram");
    set_scram_password(&path, "dave", "pw", 4096).unwrap();
    let auth = ScramAuthenticator::load(&path).unwrap();
    assert_eq!(auth.len(), 2, "one line per mechanism");

    let good = std::fs::read_to_string(&path).unwrap();
    let cases = [
        ("x:SCRAM-SHA-1:4096:AAAA:AAAA:AAAA", "unknown mechanism"),
        ("x:SCRAM-SHA-256:4096:AAAA:AAAA:AAAA", "32 bytes"),
        ("x:SCRAM-SHA-256:lots:AAAA:AAAA:AAAA", "iteration count"),
        ("x:SCRAM-SHA-256:4096:AAAA", "expected user:"),
        (
            "x:SCRAM-SHA-256:4096:!!:AAAA:AAAA",
            "salt is not valid base64",
        ),
    ];
    for (bad, what) in cases {
        std::fs::write(&path, format!("# c\n{good}{bad}\n")).unwrap();
        let err = auth.reload().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FileError::Parse { line: 4, .. }), "{msg}");
        assert!(msg.contains(what), "{msg}");
        assert_eq!(auth.len(), 2, "previous credentials stay in force");
    }
    std::fs::write(&path, format!("{good}{}", good.lines().next().unwrap())).unwrap();
    assert!(
        auth.reload()
            .unwrap_err()
            .to_string()
            .contains("two SCRAM-SHA-256 lines")
    );
    // A file caught between truncation and write (0 bytes) is not taken.
    std::fs::write(&path, "").unwrap();
    assert!(auth.reload().unwrap_err().to_string().contains("empty"));
    assert_eq!(auth.len(), 2, "previous credentials stay in force");
}

#[test]
fn debug_output_hides_keys() {
    let creds = ScramCredentials::derive(Mechanism::Sha256, b"pw", b"salt", 4096);
    let line = creds.to_line("u");
    let stored = line.split(':').nth(4).unwrap();
    let auth = ScramAuthenticator::new();
    auth.insert("u", creds.clone());
    assert!(!format!("{creds:?}").contains(stored));
    assert!(!format!("{auth:?}").contains(stored));
}

/// The client side of SCRAM-SHA-256 (RFC 5802 §3), for replay tests.
fn client_final(password: &[u8], client_first_bare: &str, server_first: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], data: &[u8]| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let attrs: Vec<&str> = server_first.split(',').collect();
    let nonce = attrs[0].strip_prefix("r=").unwrap();
    let salt = STANDARD
        .decode(attrs[1].strip_prefix("s=").unwrap())
        .unwrap();
    let iterations: u32 = attrs[2].strip_prefix("i=").unwrap().parse().unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", STANDARD.encode(proof))
}

#[tokio::test]
async fn a_recorded_client_final_is_refused_in_a_new_exchange() {
    let auth = ScramAuthenticator::new();
    auth.insert(
        "u",
        ScramCredentials::generate(Mechanism::Sha256, b"pw", 4096),
    );
    let bare = "n=u,r=fixed-client-nonce";
    let first = format!("n,,{bare}");
    let begin = || auth.begin("SCRAM-SHA-256", &client("c", None)).unwrap();

    // A good login, recorded by an eavesdropper.
    let mut ex = begin();
    let AuthStep::Continue(server_first) = step(&mut ex, first.as_bytes()).await else {
        panic!("expected server-first")
    };
    let recorded = client_final(b"pw", bare, std::str::from_utf8(&server_first).unwrap());
    assert!(matches!(
        step(&mut ex, recorded.as_bytes()).await,
        AuthStep::Success { .. }
    ));
    // Finishing the same exchange again is a protocol error.
    assert_eq!(
        step(&mut ex, recorded.as_bytes()).await,
        AuthStep::Fail(ReasonCode::PROTOCOL_ERROR)
    );
    // Replayed into a new exchange with the same client nonce: the server
    // nonce differs, so the recorded nonce and proof do not fit.
    let mut ex = begin();
    let AuthStep::Continue(_) = step(&mut ex, first.as_bytes()).await else {
        panic!("expected server-first")
    };
    assert_eq!(
        step(&mut ex, recorded.as_bytes()).await,
        AuthStep::Fail(ReasonCode::NOT_AUTHORIZED)
    );
}
