//! The authorization gate (docs/auth.md, "One gate for every message and
//! every session"): for every path by which a message enters routing, an
//! allowed and a forbidden case, in 3.1.1 and 5.0, with each source of
//! authorization — the ACL file, an HTTP authorization service and JWT ACL
//! claims — and for a hook's rewrite. Each forbidden case fails if its path
//! skips the gate. (Topic aliases: `security.rs`.)
//!
//! The rules are the same in all three sources: a user may publish and
//! subscribe under `users/<own name>/`, nowhere else under `users/`; the
//! user `admin` may do anything (it watches for what must not arrive).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use jsonwebtoken::{EncodingKey, Header};
use roost_auth::password::{HashKind, set_password};
use roost_broker::hooks::{BoxFuture, Hooks, PublishCtx, PublishDecision, ready};
use roost_codec::{Connect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

use common::barrier::next_is_marker;
use common::clients::{connack, drop_and_wait, open_with, subscribed};
use common::{T, TestBroker};

const JWT_SECRET: &str = "authz-gate-secret-of-decent-length-0123";

/// Where the rules come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    AclFile,
    Http,
    JwtClaims,
}

const SOURCES: [Source; 3] = [Source::AclFile, Source::Http, Source::JwtClaims];
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V311, ProtocolVersion::V5];

/// A broker enforcing the rules from `source`, and what keeps it alive.
struct Gated {
    broker: TestBroker,
    source: Source,
    _dir: tempfile::TempDir,
    _http: Option<common::http::HttpStub>,
}

async fn start(source: Source) -> Gated {
    start_hooked(source, None).await
}

/// [`start`] with embedder hooks.
async fn start_hooked(source: Source, hooks: Option<Arc<dyn Hooks>>) -> Gated {
    let dir = tempfile::tempdir().unwrap();
    let (toml, http) = match source {
        Source::AclFile => {
            let passwords = dir.path().join("passwd");
            for user in ["alice", "bob", "admin"] {
                set_password(&passwords, user, "pw", HashKind::Pbkdf2Sha512).unwrap();
            }
            let acl = dir.path().join("acl");
            std::fs::write(
                &acl,
                "allow user:admin all #\nallow all all users/%u/#\ndeny all all users/#\n",
            )
            .unwrap();
            let toml = format!(
                "[auth.password_file]\npath = {:?}\n[auth.acl_file]\npath = {:?}\n",
                passwords.display().to_string(),
                acl.display().to_string()
            );
            (toml, None)
        }
        Source::Http => {
            // The service sees the user name and topic of each question.
            let stub = common::http::serve(|body| {
                Box::pin(async move {
                    let field = |name: &str| {
                        let key = format!("\"{name}\":\"");
                        body.split(&key)
                            .nth(1)
                            .and_then(|rest| rest.split('"').next())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let (user, topic) = (field("username"), field("topic"));
                    let allowed = user == "admin"
                        || !topic.starts_with("users/")
                        || topic.starts_with(&format!("users/{user}/"));
                    let result = if allowed { "allow" } else { "deny" };
                    (200, format!("{{\"result\":\"{result}\"}}"))
                })
            })
            .await;
            let toml = format!(
                "[auth.http_acl]\nurl = {:?}\ntimeout_ms = 5000\ncache_ttl_secs = 0\n",
                stub.url()
            );
            (toml, Some(stub))
        }
        Source::JwtClaims => {
            let toml = format!(
                "[auth.jwt]\nsecret = \"{JWT_SECRET}\"\nusername_claim = \"sub\"\nsuperuser_claim = \"admin\"\n"
            );
            (toml, None)
        }
    };
    let mut builder = roost_broker::Broker::builder().config(common::config(&toml));
    if let Some(hooks) = hooks {
        builder = builder.hooks(hooks);
    }
    Gated {
        broker: common::start_built(builder).await,
        source,
        _dir: dir,
        _http: http,
    }
}

/// A JWT for `user` whose ACL claim allows `users/<user>/#` only.
fn token(user: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(3600);
    let claims = serde_json::json!({
        "sub": user,
        "exp": exp.as_secs(),
        "admin": user == "admin",
        "acl": {"all": [format!("users/{user}/#")]},
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

impl Gated {
    fn addr(&self) -> SocketAddr {
        self.broker.addr
    }

    /// A CONNECT for `user` with the credentials this source expects.
    fn login(&self, version: ProtocolVersion, user: &str) -> Connect {
        let mut c = connect(version, &unique_id(user));
        match self.source {
            Source::AclFile => {
                c.username = Some(ByteString::from(user));
                c.password = Some(Bytes::from_static(b"pw"));
            }
            // The HTTP service authorizes; anyone may connect (no authenticator).
            Source::Http => c.username = Some(ByteString::from(user)),
            Source::JwtClaims => {
                c.username = Some(ByteString::from(user));
                c.password = Some(Bytes::from(token(user)));
            }
        }
        c
    }

    /// `admin`, subscribed to everything under `users/`.
    async fn watcher(&self) -> RawClient {
        let mut admin = open_with(self.addr(), self.login(ProtocolVersion::V5, "admin")).await;
        subscribed(&mut admin, "users/#", QoS::AtLeastOnce).await;
        admin
    }
}

/// What `watcher` receives next is the marker `alice` publishes on her own
/// topic: nothing `alice` sent before it reached anyone.
async fn nothing_leaked(alice: &mut RawClient, watcher: &mut RawClient) {
    next_is_marker(
        alice,
        watcher,
        &format!("users/alice/{}", unique_id("marker")),
    )
    .await;
}

fn acked(reason: ReasonCode) -> bool {
    reason.0 < 0x80
}

/// Sends a QoS 1 PUBLISH and returns its PUBACK's reason code.
async fn puback(client: &mut RawClient, topic: &str) -> ReasonCode {
    client
        .send(publish(topic, &b"x"[..], QoS::AtLeastOnce, Some(7)))
        .await
        .unwrap();
    loop {
        match client.recv(T).await.unwrap() {
            Packet::PubAck(a) => return a.reason_code,
            Packet::Publish(_) => continue,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ PUBLISH

#[tokio::test]
async fn publish_is_authorized_for_every_source_and_version() {
    for source in SOURCES {
        let gated = start(source).await;
        let mut watcher = gated.watcher().await;
        for version in VERSIONS {
            let mut alice = open_with(gated.addr(), gated.login(version, "alice")).await;
            // Allowed: acknowledged and delivered.
            let own = format!("users/alice/{}", unique_id("own"));
            assert!(
                acked(puback(&mut alice, &own).await),
                "{source:?} {version:?}"
            );
            match watcher.recv(T).await.unwrap() {
                Packet::Publish(p) => assert_eq!(&*p.topic, own.as_str()),
                other => {
                    panic!("{source:?} {version:?}: expected the allowed PUBLISH, got {other:?}")
                }
            }
            // Forbidden: 5.0 is told with 0x87; 3.1.1 is acknowledged and the
            // message dropped. Either way it reaches nobody.
            let code = puback(&mut alice, "users/bob/inbox").await;
            if version.is_v5() {
                assert_eq!(code, ReasonCode::NOT_AUTHORIZED, "{source:?}");
            }
            nothing_leaked(&mut alice, &mut watcher).await;
        }
    }
}

// --------------------------------------------------------------------- will

fn with_will(mut c: Connect, topic: &str) -> Connect {
    c.will = Some(LastWill {
        topic: ByteString::from(topic),
        payload: Bytes::from_static(b"forged"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    c
}

/// The 3.1.1 return code for "not authorized" (5) and the 5.0 reason code
/// (0x87) both read back as NOT_AUTHORIZED through the test kit.
fn refused_as_not_authorized(code: ReasonCode, version: ProtocolVersion) -> bool {
    if version.is_v5() {
        code == ReasonCode::NOT_AUTHORIZED
    } else {
        code == ReasonCode::NOT_AUTHORIZED || code.0 == 5
    }
}

#[tokio::test]
async fn a_will_is_authorized_at_connect_for_every_source_and_version() {
    for source in SOURCES {
        let gated = start(source).await;
        let mut watcher = gated.watcher().await;
        for version in VERSIONS {
            for forbidden in ["users/bob/inbox", "$SYS/broker/fake"] {
                let (_client, code) = connack(
                    gated.addr(),
                    with_will(gated.login(version, "alice"), forbidden),
                )
                .await;
                assert!(
                    refused_as_not_authorized(code, version),
                    "{source:?} {version:?} will on {forbidden}: CONNACK {code:?}"
                );
            }
            // Allowed: accepted, and published when the connection dies.
            let own = format!("users/alice/{}", unique_id("will"));
            let (alice, code) =
                connack(gated.addr(), with_will(gated.login(version, "alice"), &own)).await;
            assert_eq!(code, ReasonCode::SUCCESS, "{source:?} {version:?}");
            drop(alice);
            match watcher.recv(T).await.unwrap() {
                Packet::Publish(p) => assert_eq!(&*p.topic, own.as_str(), "{source:?} {version:?}"),
                other => panic!("{source:?} {version:?}: expected the will, got {other:?}"),
            }
        }
        let mut alice = open_with(gated.addr(), gated.login(ProtocolVersion::V5, "alice")).await;
        nothing_leaked(&mut alice, &mut watcher).await;
        assert!(gated.broker.handle.stats().wills_refused >= 4);
    }
}

// ------------------------------------------------------------ session owner

#[tokio::test]
async fn a_client_id_is_attached_only_by_its_owner_for_every_source_and_version() {
    for source in SOURCES {
        let gated = start(source).await;
        for version in VERSIONS {
            let id = unique_id("owned");
            let mut first = gated.login(version, "alice");
            first.client_id = ByteString::from(id.as_str());
            first.clean_start = false;
            first.properties.session_expiry_interval = Some(600);
            let alice = open_with(gated.addr(), first.clone()).await;
            // Live: bob may not take it over, with or without Clean Start.
            for clean_start in [false, true] {
                let mut bob = gated.login(version, "bob");
                bob.client_id = ByteString::from(id.as_str());
                bob.clean_start = clean_start;
                bob.properties.session_expiry_interval = Some(600);
                let (_bob, code) = connack(gated.addr(), bob).await;
                assert!(
                    refused_as_not_authorized(code, version),
                    "{source:?} {version:?}"
                );
            }
            // Parked: the same.
            drop_and_wait(&gated.broker, alice).await;
            let mut bob = gated.login(version, "bob");
            bob.client_id = ByteString::from(id.as_str());
            bob.clean_start = false;
            let (_bob, code) = connack(gated.addr(), bob).await;
            assert!(
                refused_as_not_authorized(code, version),
                "{source:?} {version:?}"
            );
            // The owner resumes it.
            let (_alice, code) = connack(gated.addr(), first).await;
            assert_eq!(code, ReasonCode::SUCCESS, "{source:?} {version:?}");
        }
    }
}

// ------------------------------------------------------------ hook rewrites

/// Moves `to-bob/<rest>` to `users/bob/<rest>` (forbidden to alice) and
/// `to-me/<rest>` to `users/alice/<rest>` (allowed).
struct Rewriter;

impl Hooks for Rewriter {
    fn on_publish<'a>(&'a self, ctx: &'a mut PublishCtx<'_>) -> BoxFuture<'a, PublishDecision> {
        let topic = ctx.message.topic.to_string();
        if let Some(rest) = topic.strip_prefix("to-bob/") {
            ctx.message.topic = ByteString::from(format!("users/bob/{rest}"));
        } else if let Some(rest) = topic.strip_prefix("to-me/") {
            ctx.message.topic = ByteString::from(format!("users/alice/{rest}"));
        }
        ready(PublishDecision::Allow)
    }
}

#[tokio::test]
async fn a_hook_rewrite_passes_the_gate_again() {
    let hooked = start_hooked(Source::AclFile, Some(Arc::new(Rewriter))).await;
    let mut watcher = hooked.watcher().await;
    for version in VERSIONS {
        let mut alice = open_with(hooked.addr(), hooked.login(version, "alice")).await;
        let code = puback(&mut alice, "to-bob/inbox").await;
        if version.is_v5() {
            assert_eq!(code, ReasonCode::NOT_AUTHORIZED);
        }
        nothing_leaked(&mut alice, &mut watcher).await;
        let leaf = unique_id("leaf");
        assert!(acked(puback(&mut alice, &format!("to-me/{leaf}")).await));
        let got = watcher.recv_publish(T).await.unwrap();
        assert_eq!(&*got.topic, format!("users/alice/{leaf}").as_str());
    }
}
