//! HTTP authentication and authorization against a local test server
//! (plain HTTP and HTTPS with a private CA).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use common::{authenticate, client, client_from, closed_port, serve, serve_with, wait_until};
use roost_auth::{HttpAclConfig, HttpAuthConfig, HttpAuthenticator, HttpAuthorizer};
use roost_hooks::{AclResult, Action, AuthResult, Authorizer, QoS, ReasonCode};

const PUB: Action = Action::Publish {
    qos: QoS::AtLeastOnce,
    retain: true,
};
const SUB: Action = Action::Subscribe {
    qos: QoS::ExactlyOnce,
};

fn authn(text: &str) -> HttpAuthenticator {
    HttpAuthenticator::from_config(&toml::from_str::<HttpAuthConfig>(text).unwrap()).unwrap()
}

fn authz(text: &str) -> HttpAuthorizer {
    HttpAuthorizer::from_config(&toml::from_str::<HttpAclConfig>(text).unwrap()).unwrap()
}

/// Decides by the JSON body's password field, like an EMQX auth service.
fn password_checker(req: &common::Request) -> (u16, String) {
    let body = req.json();
    match body["password"].as_str() {
        Some("good") => (
            200,
            r#"{"result":"allow","is_superuser":true,"expire_at":4102444800}"#.into(),
        ),
        Some("other") => (200, r#"{"result":"ignore"}"#.into()),
        Some("forbidden") => (403, String::new()),
        _ => (200, r#"{"result":"deny"}"#.into()),
    }
}

#[tokio::test]
async fn authentication_posts_templated_json_and_reads_the_result() {
    let server = serve(password_checker).await;
    let auth = authn(&format!(
        "url = \"{}\"\nheaders = {{ authorization = \"Bearer t0ken\" }}",
        server.url("/auth")
    ));
    let c = client_from("dev-1", Some("alice"), "192.0.2.7:4000");
    match authenticate(&auth, &c, Some(b"good")).await {
        AuthResult::Accept(g) => {
            assert!(g.superuser);
            assert_eq!(
                g.expires_at,
                Some(UNIX_EPOCH + Duration::from_secs(4_102_444_800))
            );
        }
        other => panic!("{other:?}"),
    }
    let requests = server.requests.lock().clone();
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/auth");
    assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = r.json();
    assert_eq!(body["clientid"], "dev-1");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["password"], "good");
    assert_eq!(body["peerhost"], "192.0.2.7");

    assert_eq!(
        authenticate(&auth, &c, Some(b"bad")).await,
        AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
    assert_eq!(
        authenticate(&auth, &c, Some(b"other")).await,
        AuthResult::Ignore
    );
    assert_eq!(
        authenticate(&auth, &c, Some(b"forbidden")).await,
        AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
    );
}

#[tokio::test]
async fn answers_are_cached_per_credentials() {
    let server = serve(password_checker).await;
    let auth = authn(&format!(
        "url = \"{}\"\ncache_ttl_secs = 300",
        server.url("/")
    ));
    let c = client("c", Some("u"));
    for _ in 0..3 {
        assert!(matches!(
            authenticate(&auth, &c, Some(b"good")).await,
            AuthResult::Accept(_)
        ));
    }
    assert_eq!(server.count(), 1);
    // A different password is a different question.
    assert!(matches!(
        authenticate(&auth, &c, Some(b"bad")).await,
        AuthResult::Refuse(_)
    ));
    assert_eq!(server.count(), 2);
    auth.clear_cache();
    assert!(matches!(
        authenticate(&auth, &c, Some(b"good")).await,
        AuthResult::Accept(_)
    ));
    assert_eq!(server.count(), 3);

    let uncached = authn(&format!(
        "url = \"{}\"\ncache_ttl_secs = 0",
        server.url("/")
    ));
    for _ in 0..2 {
        authenticate(&uncached, &c, Some(b"good")).await;
    }
    assert_eq!(server.count(), 5);
}

#[tokio::test]
async fn form_bodies_get_requests_and_custom_params() {
    let server = serve(|_| (204, String::new())).await;
    let form = authn(&format!(
        "url = \"{}\"\nbody = \"form\"\nparams = {{ user = \"${{username}}\", secret = \"${{password}}\", who = \"${{clientid}}@${{peerhost}}\" }}",
        server.url("/form")
    ));
    let c = client("id 1", Some("al ice"));
    assert!(matches!(
        authenticate(&form, &c, Some(b"p&w=d")).await,
        AuthResult::Accept(_)
    ));
    let get = authn(&format!(
        "url = \"{}\"\nmethod = \"get\"",
        server.url("/get?static=1")
    ));
    assert!(matches!(
        authenticate(&get, &c, Some(b"pw")).await,
        AuthResult::Accept(_)
    ));

    let requests = server.requests.lock().clone();
    let body = String::from_utf8(requests[0].body.clone()).unwrap();
    assert!(
        requests[0]
            .header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    for part in ["user=al+ice", "secret=p%26w%3Dd", "who=id+1%40127.0.0.1"] {
        assert!(body.contains(part), "{body}");
    }
    assert_eq!(requests[1].method, "GET");
    assert!(
        requests[1].target.starts_with("/get?static=1&"),
        "{}",
        requests[1].target
    );
    assert!(requests[1].target.contains("username=al+ice"));
}

#[tokio::test]
async fn unreachable_or_failing_service_fails_closed() {
    let port = closed_port().await;
    let down = authn(&format!(
        "url = \"http://127.0.0.1:{port}/auth\"\ntimeout_ms = 2000"
    ));
    let c = client("c", Some("u"));
    assert_eq!(
        authenticate(&down, &c, Some(b"good")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    let broken = serve(|_| (500, String::new())).await;
    let auth = authn(&format!("url = \"{}\"", broken.url("/")));
    assert_eq!(
        authenticate(&auth, &c, Some(b"good")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    // Failures are not cached: the service is asked again.
    authenticate(&auth, &c, Some(b"good")).await;
    assert_eq!(broken.count(), 2);

    let authorizer = authz(&format!(
        "url = \"http://127.0.0.1:{port}/acl\"\ntimeout_ms = 2000"
    ));
    assert_eq!(authorizer.check_async(&c, PUB, "t").await, AclResult::Deny);
    assert_eq!(authorizer.cached(&c, PUB, "t"), None);
}

#[tokio::test]
async fn a_2xx_that_is_not_a_service_answer_fails_closed() {
    // A wrong URL, or a proxy's page in front of a dead service: 200 with
    // HTML. Taking "2xx without a result" as allow would let everyone in.
    let html = serve(|_| (200, "<html><body>It works!</body></html>".into())).await;
    let c = client("c", Some("u"));
    let auth = authn(&format!("url = \"{}\"", html.url("/auth")));
    assert_eq!(
        authenticate(&auth, &c, Some(b"anything")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    let authorizer = authz(&format!("url = \"{}\"", html.url("/acl")));
    assert_eq!(authorizer.check_async(&c, PUB, "t").await, AclResult::Deny);
    assert_eq!(
        authorizer.cached(&c, PUB, "t"),
        None,
        "failures are not cached"
    );

    // An answer far larger than any real one is not read to the end.
    let huge = format!(r#"{{"result":"allow","pad":"{}"}}"#, "x".repeat(200_000));
    let big = serve(move |_| (200, huge.clone())).await;
    let auth = authn(&format!("url = \"{}\"", big.url("/auth")));
    assert_eq!(
        authenticate(&auth, &c, Some(b"anything")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    let authorizer = authz(&format!("url = \"{}\"", big.url("/acl")));
    assert_eq!(authorizer.check_async(&c, PUB, "t").await, AclResult::Deny);
}

#[tokio::test]
async fn cached_authorization_is_keyed_by_everything_the_service_sees() {
    // The service lets only MQTT 5.0 clients publish. A 3.1.1 connection
    // with the same client id, user and address must not reuse the answer
    // given to the 5.0 one.
    let server = serve(|req| {
        let body = req.json();
        let ok = body["proto"] == "5";
        (
            200,
            format!(r#"{{"result":"{}"}}"#, if ok { "allow" } else { "deny" }),
        )
    })
    .await;
    let a = authz(&format!(
        "url = \"{}\"\nparams = {{ clientid = \"${{clientid}}\", username = \"${{username}}\", \
         proto = \"${{proto_ver}}\", topic = \"${{topic}}\" }}",
        server.url("/acl")
    ));
    let v5 = client("dev", Some("u"));
    let v311 = roost_hooks::ClientInfo::new(
        v5.client_id.clone(),
        v5.username.clone(),
        v5.peer,
        roost_hooks::ProtocolVersion::V311,
        roost_hooks::ListenerKind::Tcp,
    );
    assert_eq!(a.check_async(&v5, PUB, "t").await, AclResult::Allow);
    assert_eq!(a.check_async(&v311, PUB, "t").await, AclResult::Deny);
    assert_eq!(a.authorize(&v311, PUB, "t"), AclResult::Deny);
    assert_eq!(a.authorize(&v5, PUB, "t"), AclResult::Allow);
    assert_eq!(server.count(), 2);
    // No user name and a user name nobody could type are different requests.
    let anonymous = client("dev", None);
    let odd = client("dev", Some("\u{1}"));
    a.check_async(&anonymous, PUB, "t").await;
    a.check_async(&odd, PUB, "t").await;
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn slow_service_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let auth = authn(&format!("url = \"http://{addr}/\"\ntimeout_ms = 200"));
    let started = std::time::Instant::now();
    assert_eq!(
        authenticate(&auth, &client("c", Some("u")), Some(b"x")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn authorization_sends_topic_and_action_and_caches() {
    let server = serve(|req| {
        let body = req.json();
        let allowed =
            body["action"] == "subscribe" || body["topic"].as_str().unwrap().starts_with("ok/");
        (
            200,
            format!(
                r#"{{"result":"{}"}}"#,
                if allowed { "allow" } else { "deny" }
            ),
        )
    })
    .await;
    let a = authz(&format!("url = \"{}\"", server.url("/acl")));
    let c = client("dev", Some("u"));
    assert_eq!(a.check_async(&c, PUB, "ok/1").await, AclResult::Allow);
    assert_eq!(a.check_async(&c, PUB, "no/1").await, AclResult::Deny);
    assert_eq!(a.check_async(&c, SUB, "no/#").await, AclResult::Allow);
    let body = server.requests.lock()[0].json();
    assert_eq!(body["topic"], "ok/1");
    assert_eq!(body["action"], "publish");
    assert_eq!(body["clientid"], "dev");
    assert!(body.get("password").is_none());
    // The synchronous path answers from the cache without asking again.
    assert_eq!(a.authorize(&c, PUB, "ok/1"), AclResult::Allow);
    assert_eq!(a.authorize(&c, PUB, "no/1"), AclResult::Deny);
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn sync_authorize_misses_then_prefetches() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let server = serve(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        (200, r#"{"result":"allow"}"#.into())
    })
    .await;
    let c = client("dev", None);
    let ignore = authz(&format!("url = \"{}\"", server.url("/")));
    assert_eq!(ignore.authorize(&c, PUB, "a/b"), AclResult::Ignore);
    wait_until(|| ignore.cached(&c, PUB, "a/b").is_some()).await;
    assert_eq!(ignore.authorize(&c, PUB, "a/b"), AclResult::Allow);

    let deny = authz(&format!(
        "url = \"{}\"\ncache_miss = \"deny\"",
        server.url("/")
    ));
    assert_eq!(deny.authorize(&c, SUB, "x/#"), AclResult::Deny);
    wait_until(|| deny.cached(&c, SUB, "x/#").is_some()).await;
    assert_eq!(deny.authorize(&c, SUB, "x/#"), AclResult::Allow);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad_acl = [
        "url = \"http://x/\"\nparams = { p = \"${password}\" }",
        "url = \"http://x/\"\nparams = { p = \"${bogus}\" }",
        "url = \"ftp://x/\"",
        "url = \"not a url\"",
    ];
    for text in bad_acl {
        let c: HttpAclConfig = toml::from_str(text).unwrap();
        assert!(HttpAuthorizer::from_config(&c).is_err(), "{text}");
    }
    let c: HttpAuthConfig =
        toml::from_str("url = \"http://x/\"\nparams = { t = \"${topic}\" }").unwrap();
    assert!(HttpAuthenticator::from_config(&c).is_err());
    assert!(
        toml::from_str::<HttpAuthConfig>("url = \"http://x/\"\ncache_miss = \"deny\"").is_err()
    );
    let c: HttpAuthConfig =
        toml::from_str("url = \"http://x/\"\nheaders = { authorization = \"Bearer s3cr3t\" }")
            .unwrap();
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(!format!("{:?}", HttpAuthenticator::from_config(&c).unwrap()).contains("s3cr3t"));
}

#[tokio::test]
async fn https_with_a_private_ca() {
    // A CA and a server certificate for 127.0.0.1.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let server = serve_with(|_| (200, r#"{"result":"allow"}"#.into()), Some(acceptor)).await;

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let url = format!("https://127.0.0.1:{}/auth", server.addr.port());
    let auth = authn(&format!("url = \"{url}\"\nca_file = {ca_file:?}"));
    let c = client("c", Some("u"));
    assert!(matches!(
        authenticate(&auth, &c, Some(b"pw")).await,
        AuthResult::Accept(_)
    ));
    assert_eq!(server.count(), 1);

    // Without the CA the certificate is not trusted: fail closed.
    let untrusting = authn(&format!("url = \"{url}\"\ntimeout_ms = 3000"));
    assert_eq!(
        authenticate(&untrusting, &c, Some(b"pw")).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    assert_eq!(server.count(), 1);
}
