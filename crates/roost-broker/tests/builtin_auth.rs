//! The `[auth]` section end to end: a Mosquitto-format password file and an
//! ACL file configured in TOML, enforced at the wire, and reloaded live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use roost_auth::password::{HashKind, set_password};
use roost_codec::{Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

use common::clients::connack;

const T: Duration = Duration::from_secs(5);

fn login(user: &str, password: &'static [u8]) -> Connect {
    let mut c = connect(ProtocolVersion::V5, &unique_id("builtin"));
    c.username = Some(ByteString::from(user));
    c.password = Some(Bytes::from_static(password));
    c
}

#[tokio::test]
async fn password_file_and_acl_file_from_config_are_enforced_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwd");
    let acl = dir.path().join("acl");
    set_password(&passwords, "alice", "wonderland", HashKind::Pbkdf2Sha512).unwrap();
    std::fs::write(
        &acl,
        "allow user:alice publish rooms/%u/#\ndeny all all #\n",
    )
    .unwrap();
    let toml = format!(
        "[auth.password_file]\npath = {:?}\n[auth.acl_file]\npath = {:?}\n",
        passwords.display().to_string(),
        acl.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;

    assert_eq!(
        connack(broker.addr, login("alice", b"nope")).await.1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        connack(broker.addr, login("bob", b"x")).await.1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    let (mut alice, code) = connack(broker.addr, login("alice", b"wonderland")).await;
    assert_eq!(code, ReasonCode::SUCCESS);

    alice
        .send(Packet::Publish(publish(
            "rooms/alice/lamp",
            &b"on"[..],
            QoS::AtLeastOnce,
            Some(1),
        )))
        .await
        .unwrap();
    match alice.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert!(!a.reason_code.is_error(), "{:?}", a.reason_code),
        other => panic!("{other:?}"),
    }
    alice
        .send(Packet::Publish(publish(
            "rooms/bob/lamp",
            &b"on"[..],
            QoS::AtLeastOnce,
            Some(2),
        )))
        .await
        .unwrap();
    match alice.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert_eq!(a.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("{other:?}"),
    }

    // A new user appears after a reload (SIGHUP calls the same method).
    set_password(&passwords, "bob", "builder", HashKind::Pbkdf2Sha512).unwrap();
    assert!(broker.handle.reload_auth().is_empty());
    assert_eq!(
        connack(broker.addr, login("bob", b"builder")).await.1,
        ReasonCode::SUCCESS
    );

    // A corrupt file on reload keeps the previous rules and reports the line.
    std::fs::write(&passwords, "alice:$7$broken\n").unwrap();
    let errors = broker.handle.reload_auth();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        connack(broker.addr, login("bob", b"builder")).await.1,
        ReasonCode::SUCCESS
    );
}

#[tokio::test]
async fn a_missing_password_file_is_a_startup_error_naming_it() {
    let toml = "[auth.password_file]\npath = \"/nonexistent/roost-passwd\"\n";
    let err = roost_broker::Broker::builder()
        .config(common::config(toml))
        .bind()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/roost-passwd"),
        "{err}"
    );
}

/// Publishes at QoS 1 and returns the PUBACK reason code.
async fn publish_code(client: &mut RawClient, topic: &str, id: u16) -> ReasonCode {
    client
        .send(Packet::Publish(publish(
            topic,
            &b"x"[..],
            QoS::AtLeastOnce,
            Some(id),
        )))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PubAck(a) => a.reason_code,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

fn allowed(code: ReasonCode) -> bool {
    !code.is_error()
}

#[tokio::test]
async fn a_reload_invalidates_the_answers_sessions_cached() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "allow all publish lamp/#\ndeny all all #\n").unwrap();
    let toml = format!("[auth.acl_file]\npath = {:?}\n", acl.display().to_string());
    let broker = common::start_with(common::config(&toml), None).await;
    let mut c = common::clients::open_v5(broker.addr, "reload").await;
    // Allowed, and now cached for this session.
    assert!(allowed(publish_code(&mut c, "lamp/1", 1).await));
    assert!(allowed(publish_code(&mut c, "lamp/1", 2).await));
    std::fs::write(&acl, "deny all all #\n").unwrap();
    assert!(broker.handle.reload_auth().is_empty());
    // The same session, the same topic: the new rules answer.
    assert_eq!(
        publish_code(&mut c, "lamp/1", 3).await,
        ReasonCode::NOT_AUTHORIZED
    );
}

/// Allows `ok/...` topics, denies the rest; holds `slow/...` answers until
/// released.
async fn http_acl_service(release: Arc<tokio::sync::Notify>) -> common::http::HttpStub {
    common::http::serve(move |body| {
        let release = Arc::clone(&release);
        Box::pin(async move {
            if body.contains("\"topic\":\"slow/") {
                release.notified().await;
            }
            let result = if body.contains("\"topic\":\"ok/") || body.contains("\"topic\":\"slow/") {
                "allow"
            } else {
                "deny"
            };
            (200, format!("{{\"result\":\"{result}\"}}"))
        })
    })
    .await
}

fn http_acl_config(url: &str) -> String {
    // cache_miss = "ignore" with a default-allow policy: only an awaited
    // answer can deny the first request.
    format!("[auth.http_acl]\nurl = {url:?}\ntimeout_ms = 5000\n")
}

#[tokio::test]
async fn the_http_authorizer_is_awaited_before_the_first_publish_and_subscribe() {
    let service = http_acl_service(Arc::new(tokio::sync::Notify::new())).await;
    let broker = common::start_with(common::config(&http_acl_config(&service.url())), None).await;
    let mut c = common::clients::open_v5(broker.addr, "httpacl").await;
    assert_eq!(
        publish_code(&mut c, "no/1", 1).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert!(allowed(publish_code(&mut c, "ok/1", 2).await));
    assert_eq!(
        common::clients::sub(&mut c, "no/#", QoS::AtMostOnce).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert!(allowed(
        common::clients::sub(&mut c, "ok/#", QoS::AtMostOnce).await
    ));
    assert_eq!(service.count(), 4);
}

#[tokio::test]
async fn an_unreachable_http_authorizer_fails_closed() {
    let port = common::http::closed_port().await;
    let url = format!("http://127.0.0.1:{port}/acl");
    let broker = common::start_with(common::config(&http_acl_config(&url)), None).await;
    let mut c = common::clients::open_v5(broker.addr, "httpdown").await;
    assert_eq!(
        publish_code(&mut c, "ok/1", 1).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        common::clients::sub(&mut c, "ok/#", QoS::AtMostOnce).await,
        ReasonCode::NOT_AUTHORIZED
    );
}

#[tokio::test]
async fn a_slow_http_authorizer_delays_only_its_own_client() {
    let release = Arc::new(tokio::sync::Notify::new());
    let service = http_acl_service(Arc::clone(&release)).await;
    let broker = common::start_with(common::config(&http_acl_config(&service.url())), None).await;
    let mut slow = common::clients::open_v5(broker.addr, "slow").await;
    let mut other = common::clients::open_v5(broker.addr, "other").await;
    slow.send(Packet::Publish(publish(
        "slow/1",
        &b"x"[..],
        QoS::AtLeastOnce,
        Some(1),
    )))
    .await
    .unwrap();
    // While the service holds the slow client's answer, another client is
    // served end to end (ping, authorized publish).
    other.send(Packet::PingReq).await.unwrap();
    assert!(matches!(other.recv(T).await.unwrap(), Packet::PingResp));
    assert!(allowed(publish_code(&mut other, "ok/2", 1).await));
    // The slow client is still waiting for its PUBACK.
    assert!(
        slow.recv(Duration::from_millis(50)).await.is_err(),
        "the slow client was answered before its authorizer"
    );
    release.notify_one();
    match slow.recv(T).await.unwrap() {
        Packet::PubAck(a) => assert!(allowed(a.reason_code), "{:?}", a.reason_code),
        other => panic!("{other:?}"),
    }
}

fn acl_config(acl: &std::path::Path, extra: &str) -> String {
    format!(
        "{extra}[auth.acl_file]\npath = {:?}\n",
        acl.display().to_string()
    )
}

#[tokio::test]
async fn a_denied_filter_can_be_answered_0x80_or_with_a_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "deny all subscribe secret/#\n").unwrap();
    let quiet = acl_config(&acl, "[security]\ndenied_subscribe = \"unspecified\"\n");
    let broker = common::start_with(common::config(&quiet), None).await;
    let mut c = common::clients::open_v5(broker.addr, "unspec").await;
    assert_eq!(
        common::clients::sub(&mut c, "secret/a", QoS::AtMostOnce).await,
        ReasonCode::UNSPECIFIED_ERROR
    );
    assert!(
        !common::clients::sub(&mut c, "open/a", QoS::AtMostOnce)
            .await
            .is_error()
    );

    let strict = acl_config(&acl, "[security]\ndenied_subscribe = \"disconnect\"\n");
    let broker = common::start_with(common::config(&strict), None).await;
    let mut c = common::clients::open_v5(broker.addr, "strict").await;
    c.send(roost_testkit::packets::subscribe(
        1,
        "secret/a",
        QoS::AtMostOnce,
    ))
    .await
    .unwrap();
    common::clients::expect_disconnect(&mut c, ReasonCode::NOT_AUTHORIZED).await;
}

#[tokio::test]
async fn a_corrupt_acl_file_names_its_line_at_startup_and_keeps_the_old_rules_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "allow all all open/#\nallow all\n").unwrap();
    let err = roost_broker::Broker::builder()
        .config(common::config(&acl_config(&acl, "")))
        .bind()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{}:2", acl.display())), "{err}");

    std::fs::write(&acl, "allow all publish open/#\ndeny all all #\n").unwrap();
    let broker = common::start_with(common::config(&acl_config(&acl, "")), None).await;
    let mut c = common::clients::open_v5(broker.addr, "corrupt").await;
    assert!(allowed(publish_code(&mut c, "open/1", 1).await));
    std::fs::write(&acl, "deny all all #\nthis is not a rule\n").unwrap();
    let errors = broker.handle.reload_auth();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(":2"), "{errors:?}");
    // The old rules are still in force.
    assert!(allowed(publish_code(&mut c, "open/1", 2).await));
    assert_eq!(
        publish_code(&mut c, "closed/1", 3).await,
        ReasonCode::NOT_AUTHORIZED
    );
}

const JWT_SECRET: &str = "jwt-secret-never-printed-0123456789";
const HEADER_TOKEN: &str = "header-token-never-printed";
const PARAM_SECRET: &str = "param-secret-never-printed";

#[test]
fn the_auth_config_debug_output_holds_no_secret() {
    let toml = format!(
        "[auth.jwt]\nsecret = \"{JWT_SECRET}\"\n\
         [auth.http]\nurl = \"http://user:pass-in-url@127.0.0.1:1/auth?key=query-secret\"\n\
         headers = {{ authorization = \"Bearer {HEADER_TOKEN}\" }}\n\
         params = {{ key = \"{PARAM_SECRET}\", username = \"${{username}}\" }}\n"
    );
    let config = roost_broker::Config::from_toml(&toml, "test").unwrap();
    let shown = format!("{config:?}");
    for secret in [
        JWT_SECRET,
        HEADER_TOKEN,
        PARAM_SECRET,
        "pass-in-url",
        "query-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

/// Collects what the broker logs (at every level) while the test runs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn wrong_and_right_passwords_never_reach_the_logs() {
    // A current-thread runtime: the broker's tasks log through this
    // thread's default subscriber.
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwd");
    set_password(
        &passwords,
        "alice",
        "right-password-123",
        HashKind::Pbkdf2Sha512,
    )
    .unwrap();
    let toml = format!(
        "[auth.password_file]\npath = {:?}\n[auth.jwt]\nsecret = \"{JWT_SECRET}\"\nnot_a_jwt = \"ignore\"\n",
        passwords.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;
    assert_eq!(
        connack(broker.addr, login("alice", b"wrong-password-456"))
            .await
            .1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    assert_eq!(
        connack(broker.addr, login("alice", b"right-password-123"))
            .await
            .1,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        connack(
            broker.addr,
            login("bob", b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
        )
        .await
        .1,
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
    drop(broker);
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("authentication refused"),
        "logs were not captured: {text}"
    );
    for secret in [
        "wrong-password-456",
        "right-password-123",
        "c2lnbmF0dXJl",
        JWT_SECRET,
        "$7$",
    ] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}

// ---- SCRAM over MQTT AUTH packets, against an independent client ----

/// The independent SCRAM client of roost-auth's tests (Python hashlib/hmac).
const SCRAM_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../roost-auth/tests/scram_client.py"
);

/// One run of `scram_client.py login`: it speaks first, then answers.
struct ScramClient {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ScramClient {
    fn start(user: &str, password: &str) -> Self {
        let mut child = std::process::Command::new("python3")
            .args([SCRAM_CLIENT, "login", "sha256", user, password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 is needed for the independent SCRAM client");
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// The client's next message (it never waits for the broker to print it).
    fn read(&mut self) -> Bytes {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stdout, &mut line).unwrap();
        Bytes::from(line.trim().to_owned())
    }

    fn write(&mut self, data: &[u8]) {
        std::io::Write::write_all(&mut self.stdin, data).unwrap();
        std::io::Write::write_all(&mut self.stdin, b"\n").unwrap();
        std::io::Write::flush(&mut self.stdin).unwrap();
    }
}

impl Drop for ScramClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scram_auth(reason_code: ReasonCode, data: Bytes) -> Packet {
    Packet::Auth(roost_codec::Auth {
        reason_code,
        properties: roost_codec::AuthProperties {
            authentication_method: Some(ByteString::from("SCRAM-SHA-256")),
            authentication_data: Some(data),
            ..Default::default()
        },
    })
}

async fn recv_auth_data(client: &mut RawClient) -> Bytes {
    match client.recv(T).await.unwrap() {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
            a.properties.authentication_data.unwrap()
        }
        other => panic!("expected AUTH, got {other:?}"),
    }
}

#[tokio::test]
async fn scram_over_auth_packets_with_an_independent_client_then_reauthentication() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("scram");
    roost_auth::scram::set_scram_password(&creds, "alice", "correct horse", 4096).unwrap();
    let toml = format!(
        "[auth.scram]\ncredentials_file = {:?}\n",
        creds.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;

    // CONNECT carries client-first; AUTH 0x18 rounds; CONNACK carries server-final.
    let mut py = ScramClient::start("alice", "correct horse");
    let mut c = connect(ProtocolVersion::V5, &unique_id("scram"));
    c.properties.authentication_method = Some(ByteString::from("SCRAM-SHA-256"));
    c.properties.authentication_data = Some(py.read());
    let mut client = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    client.send(Packet::Connect(Box::new(c))).await.unwrap();
    py.write(&recv_auth_data(&mut client).await);
    client
        .send(scram_auth(ReasonCode::CONTINUE_AUTHENTICATION, py.read()))
        .await
        .unwrap();
    let ack = match client.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    py.write(&ack.properties.authentication_data.unwrap());
    assert_eq!(
        &py.read()[..],
        b"OK",
        "the client did not verify the server"
    );

    // Re-authentication (AUTH 0x19) on the live connection.
    let mut again = ScramClient::start("alice", "correct horse");
    client
        .send(scram_auth(ReasonCode::REAUTHENTICATE, again.read()))
        .await
        .unwrap();
    again.write(&recv_auth_data(&mut client).await);
    client
        .send(scram_auth(
            ReasonCode::CONTINUE_AUTHENTICATION,
            again.read(),
        ))
        .await
        .unwrap();
    match client.recv(T).await.unwrap() {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::SUCCESS);
            again.write(&a.properties.authentication_data.unwrap());
        }
        other => panic!("expected AUTH 0x00, got {other:?}"),
    }
    assert_eq!(&again.read()[..], b"OK");

    // A wrong password: CONNACK 0x87.
    let mut wrong = ScramClient::start("alice", "battery staple");
    let mut c = connect(ProtocolVersion::V5, &unique_id("scram-bad"));
    c.properties.authentication_method = Some(ByteString::from("SCRAM-SHA-256"));
    c.properties.authentication_data = Some(wrong.read());
    let mut bad = RawClient::connect(broker.addr, ProtocolVersion::V5)
        .await
        .unwrap();
    bad.send(Packet::Connect(Box::new(c))).await.unwrap();
    wrong.write(&recv_auth_data(&mut bad).await);
    bad.send(scram_auth(
        ReasonCode::CONTINUE_AUTHENTICATION,
        wrong.read(),
    ))
    .await
    .unwrap();
    match bad.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// A ban list filters; it verifies no credentials. With only `[auth.banned]`,
/// a client that sends a user name (with or without a password) is accepted
/// exactly as with no `[auth.*]` at all; a banned user is still refused.
#[tokio::test]
async fn a_ban_list_alone_accepts_named_users_as_no_auth_config_does() {
    const BANS: &str = "[[auth.banned.entries]]\nwho = \"user:troll\"\n";
    for toml in ["", BANS] {
        let broker = common::start_with(common::config(toml), None).await;
        let mut no_password = login("bob", b"");
        no_password.password = None;
        for attempt in [login("alice", b"any password"), no_password] {
            let user = attempt.username.clone();
            let (_client, code) = connack(broker.addr, attempt).await;
            assert_eq!(code, ReasonCode::SUCCESS, "config {toml:?}, user {user:?}");
        }
    }
    let broker = common::start_with(common::config(BANS), None).await;
    let (_client, code) = connack(broker.addr, login("troll", b"x")).await;
    assert_eq!(code, ReasonCode::BANNED);
}

/// The other side of the same rule: with only `[auth.scram]`, something does
/// verify user names, so a plain CONNECT that claims one (without the AUTH
/// exchange) is refused 0x86 instead of being taken at its word; a client
/// without a user name is still anonymous.
#[tokio::test]
async fn a_user_name_that_skips_the_only_configured_scram_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("scram");
    roost_auth::scram::set_scram_password(&creds, "alice", "correct horse", 4096).unwrap();
    let toml = format!(
        "[auth.scram]\ncredentials_file = {:?}\n",
        creds.display().to_string()
    );
    let broker = common::start_with(common::config(&toml), None).await;
    let (_client, code) = connack(broker.addr, login("alice", b"anything")).await;
    assert_eq!(code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let (_client, code) = connack(
        broker.addr,
        connect(ProtocolVersion::V5, &unique_id("anon")),
    )
    .await;
    assert_eq!(code, ReasonCode::SUCCESS);
}
