//! JWT authentication with tokens minted in the test: HMAC, RSA, EC and
//! Ed25519 keys, claim checks, ACL claims and JWKS from a local server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{authenticate, client, closed_port, serve};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use parking_lot::Mutex;
use roost_auth::{JwtAuthenticator, JwtConfig};
use roost_hooks::{AuthResult, ReasonCode};
use serde_json::{Value, json};

const SECRET: &str = "a-shared-secret-of-decent-length";

fn config(text: &str) -> JwtConfig {
    toml::from_str(text).unwrap()
}

fn hmac_auth(extra: &str) -> JwtAuthenticator {
    JwtAuthenticator::from_config(&config(&format!("secret = \"{SECRET}\"\n{extra}"))).unwrap()
}

fn mint(alg: Algorithm, key: &EncodingKey, claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn hs(alg: Algorithm, claims: &Value) -> String {
    mint(
        alg,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
        None,
    )
}

fn valid_claims() -> Value {
    json!({"sub": "alice", "exp": get_current_timestamp() + 600})
}

fn refused() -> AuthResult {
    AuthResult::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
}

async fn with_password(auth: &JwtAuthenticator, token: &str) -> AuthResult {
    authenticate(auth, &client("c1", Some("alice")), Some(token.as_bytes())).await
}

fn accepted(result: &AuthResult) -> &roost_hooks::Grant {
    match result {
        AuthResult::Accept(g) => g,
        other => panic!("expected Accept, got {other:?}"),
    }
}

#[tokio::test]
async fn hmac_tokens_are_accepted_with_expiry_and_mapped_user_name() {
    let auth = hmac_auth("username_claim = \"sub\"");
    let exp = get_current_timestamp() + 600;
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = hs(alg, &json!({"sub": "alice", "exp": exp}));
        let result = with_password(&auth, &token).await;
        let grant = accepted(&result);
        assert_eq!(grant.username.as_deref(), Some("alice"), "{alg:?}");
        assert_eq!(
            grant.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(exp))
        );
        assert_eq!(grant.publish_acl, None);
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_with_leeway() {
    let auth = hmac_auth("leeway_secs = 30");
    let now = get_current_timestamp();
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &json!({"exp": now - 120}))).await,
        refused()
    );
    // Within the leeway.
    accepted(&with_password(&auth, &hs(Algorithm::HS256, &json!({"exp": now - 5}))).await);
    let future = json!({"exp": now + 600, "nbf": now + 300});
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &future)).await,
        refused()
    );
    // exp is required by default...
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &json!({"sub": "x"}))).await,
        refused()
    );
    // ...unless turned off.
    let lax = hmac_auth("require_exp = false");
    accepted(&with_password(&lax, &hs(Algorithm::HS256, &json!({"sub": "x"}))).await);
}

#[tokio::test]
async fn issuer_and_audience_are_checked() {
    let auth = hmac_auth("audience = [\"mqtt\"]\nissuer = [\"https://idp\"]");
    let exp = get_current_timestamp() + 600;
    let good = json!({"exp": exp, "aud": "mqtt", "iss": "https://idp"});
    accepted(&with_password(&auth, &hs(Algorithm::HS256, &good)).await);
    let wrong_aud = json!({"exp": exp, "aud": "web", "iss": "https://idp"});
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &wrong_aud)).await,
        refused()
    );
    let wrong_iss = json!({"exp": exp, "aud": "mqtt", "iss": "https://evil"});
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &wrong_iss)).await,
        refused()
    );
    let no_aud = json!({"exp": exp, "iss": "https://idp"});
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS256, &no_aud)).await,
        refused()
    );
}

#[tokio::test]
async fn wrong_signature_none_algorithm_and_disallowed_algorithm_are_refused() {
    let auth = hmac_auth("algorithms = [\"HS256\"]");
    let other_key = EncodingKey::from_secret(b"another secret");
    let forged = mint(Algorithm::HS256, &other_key, &valid_claims(), None);
    assert_eq!(with_password(&auth, &forged).await, refused());

    // A tampered payload under the original signature.
    let token = hs(Algorithm::HS256, &valid_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let evil = URL_SAFE_NO_PAD
        .encode(json!({"sub": "root", "exp": get_current_timestamp() + 600}).to_string());
    assert_eq!(
        with_password(&auth, &format!("{}.{evil}.{}", parts[0], parts[2])).await,
        refused()
    );

    // alg=none, unsigned.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
    assert_eq!(
        with_password(&auth, &format!("{header}.{payload}.")).await,
        refused()
    );

    // A valid HS512 token when only HS256 is allowed.
    assert_eq!(
        with_password(&auth, &hs(Algorithm::HS512, &valid_claims())).await,
        refused()
    );
}

#[tokio::test]
async fn non_jwt_credentials_are_refused_or_ignored_per_config() {
    let strict = hmac_auth("");
    let lenient = hmac_auth("not_a_jwt = \"ignore\"");
    let c = client("c", Some("alice"));
    assert_eq!(
        authenticate(&strict, &c, Some(b"plain password")).await,
        refused()
    );
    assert_eq!(
        authenticate(&lenient, &c, Some(b"plain password")).await,
        AuthResult::Ignore
    );
    // JWT-shaped but malformed is refused either way.
    assert_eq!(
        authenticate(&lenient, &c, Some(b"abc.def.ghi")).await,
        refused()
    );
    // No password: not this authenticator's business.
    assert_eq!(authenticate(&strict, &c, None).await, AuthResult::Ignore);
}

#[tokio::test]
async fn token_in_the_user_name_field() {
    let auth = hmac_auth("from = \"username\"\nusername_claim = \"sub\"");
    let token = hs(Algorithm::HS256, &valid_claims());
    let result = authenticate(&auth, &client("c", Some(&token)), None).await;
    assert_eq!(accepted(&result).username.as_deref(), Some("alice"));
}

#[tokio::test]
async fn match_username_requires_the_claim_to_equal_the_connect_user() {
    let auth = hmac_auth("username_claim = \"sub\"\nmatch_username = true");
    let token = hs(Algorithm::HS256, &valid_claims());
    accepted(&authenticate(&auth, &client("c", Some("alice")), Some(token.as_bytes())).await);
    assert_eq!(
        authenticate(&auth, &client("c", Some("bob")), Some(token.as_bytes())).await,
        refused()
    );
    assert_eq!(
        authenticate(&auth, &client("c", None), Some(token.as_bytes())).await,
        refused()
    );
}

#[tokio::test]
async fn a_token_without_the_configured_username_claim_is_refused() {
    // Otherwise the CONNECT user name, chosen by the client, would be the
    // identity the ACL sees: any valid token would make its holder "admin".
    let auth = hmac_auth("username_claim = \"sub\"");
    let exp = get_current_timestamp() + 600;
    let admin = client("c", Some("admin"));
    for claims in [
        json!({"exp": exp}),
        json!({"exp": exp, "sub": ""}),
        json!({"exp": exp, "sub": ["admin"]}),
        json!({"exp": exp, "sub": null}),
    ] {
        let token = hs(Algorithm::HS256, &claims);
        assert_eq!(
            authenticate(&auth, &admin, Some(token.as_bytes())).await,
            refused(),
            "{claims}"
        );
    }
    // Without a username claim configured the CONNECT user name is the
    // identity, as documented.
    let plain = hmac_auth("");
    let token = hs(Algorithm::HS256, &json!({"exp": exp}));
    accepted(&authenticate(&plain, &admin, Some(token.as_bytes())).await);
}

#[test]
fn a_leeway_that_would_make_expiry_meaningless_is_a_config_error() {
    assert!(JwtAuthenticator::from_config(&config("secret = \"s\"\nleeway_secs = 86400")).is_ok());
    for leeway in ["86401", "9223372036854775807"] {
        let text = format!("secret = \"s\"\nleeway_secs = {leeway}");
        assert!(
            JwtAuthenticator::from_config(&config(&text)).is_err(),
            "{leeway}"
        );
    }
}

#[tokio::test]
async fn acl_and_superuser_claims_map_into_the_grant() {
    let auth = hmac_auth("username_claim = \"sub\"\nsuperuser_claim = \"admin\"");
    let claims = json!({
        "sub": "alice", "exp": get_current_timestamp() + 600, "admin": true,
        "acl": {"pub": ["devices/${clientid}/up"], "sub": ["users/%u/#"]}
    });
    let result = authenticate(
        &auth,
        &client("dev9", Some("ignored")),
        Some(hs(Algorithm::HS256, &claims).as_bytes()),
    )
    .await;
    let grant = accepted(&result);
    assert!(grant.superuser);
    assert_eq!(
        grant.publish_acl.as_deref(),
        Some(&["devices/dev9/up".to_owned()][..])
    );
    assert_eq!(
        grant.subscribe_acl.as_deref(),
        Some(&["users/alice/#".to_owned()][..])
    );
}

#[tokio::test]
async fn base64_secret_and_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let from_file =
        JwtAuthenticator::from_config(&config(&format!("secret_file = {:?}", path))).unwrap();
    accepted(&with_password(&from_file, &hs(Algorithm::HS256, &valid_claims())).await);

    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let from_b64 = JwtAuthenticator::from_config(&config(&format!(
        "secret = \"{b64}\"\nsecret_base64 = true"
    )))
    .unwrap();
    accepted(&with_password(&from_b64, &hs(Algorithm::HS256, &valid_claims())).await);
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn rsa_ec_and_ed25519_public_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let rsa_private = std::fs::read(format!("{fixtures}/test-only-rsa-private.pem")).unwrap();
    let rsa_public = format!("{fixtures}/test-only-rsa-public.pem");
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cases = [
        (
            rsa_public.clone(),
            EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
            vec![Algorithm::RS256, Algorithm::RS512, Algorithm::PS256],
        ),
        (
            write(&dir, "ec.pem", &ec.public_key_pem()),
            EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
            vec![Algorithm::ES256],
        ),
        (
            write(&dir, "ed.pem", &ed.public_key_pem()),
            EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            vec![Algorithm::EdDSA],
        ),
    ];
    for (public, private, algs) in cases {
        let auth = JwtAuthenticator::from_config(&config(&format!("public_key_file = {public:?}")))
            .unwrap();
        for alg in algs {
            let token = mint(alg, &private, &valid_claims(), None);
            accepted(&with_password(&auth, &token).await);
        }
        // HMAC tokens are never accepted by a public-key authenticator.
        assert_eq!(
            with_password(&auth, &hs(Algorithm::HS256, &valid_claims())).await,
            refused()
        );
    }
    // Key confusion: the RSA public key used as an HMAC secret.
    let auth = JwtAuthenticator::from_config(&config(&format!("public_key_file = {rsa_public:?}")))
        .unwrap();
    let pem = std::fs::read(&rsa_public).unwrap();
    let confused = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
        &valid_claims(),
        None,
    );
    assert_eq!(with_password(&auth, &confused).await, refused());
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = [
        "",
        "secret = \"s\"\npublic_key_file = \"/x\"",
        "secret = \"s\"\nalgorithms = [\"RS256\"]",
        "secret = \"s\"\nalgorithms = [\"XX999\"]",
        "secret = \"\"",
        "public_key_file = \"/does/not/exist.pem\"",
        "secret = \"s\"\nmatch_username = true",
        // The token would become the user name (and the session owner).
        "secret = \"s\"\nfrom = \"username\"",
    ];
    for text in bad {
        assert!(
            JwtAuthenticator::from_config(&config(text)).is_err(),
            "{text}"
        );
    }
    assert!(toml::from_str::<JwtConfig>("secret = \"s\"\nunknown = 1").is_err());
}

#[test]
fn debug_output_hides_the_secret() {
    let c = config(&format!("secret = \"{SECRET}\""));
    assert!(!format!("{c:?}").contains(SECRET));
    let auth = JwtAuthenticator::from_config(&c).unwrap();
    assert!(!format!("{auth:?}").contains(SECRET));
}

// ---- JWKS ---------------------------------------------------------------

struct Signer {
    kid: &'static str,
    key: EncodingKey,
}

fn ec_signer(kid: &'static str) -> Signer {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    Signer {
        kid,
        key: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
    }
}

fn jwks_of(signers: &[&Signer]) -> String {
    let keys = signers
        .iter()
        .map(|s| {
            let mut jwk = Jwk::from_encoding_key(&s.key, Algorithm::ES256).unwrap();
            jwk.common.key_id = Some(s.kid.to_owned());
            jwk
        })
        .collect();
    let mut doc = serde_json::to_value(JwkSet { keys }).unwrap();
    // Documents may hold keys we cannot use; they are skipped.
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}));
    doc.to_string()
}

#[tokio::test]
async fn jwks_keys_are_fetched_cached_and_refetched_for_an_unknown_kid() {
    let k1 = ec_signer("k1");
    let k2 = ec_signer("k2");
    let document = Arc::new(Mutex::new(jwks_of(&[&k1])));
    let served = Arc::clone(&document);
    let server = serve(move |_| (200, served.lock().clone())).await;
    let auth = JwtAuthenticator::from_config(&config(&format!(
        "[jwks]\nurl = \"{}\"\nmin_refetch_secs = 0",
        server.url("/jwks")
    )))
    .unwrap();

    let t1 = mint(Algorithm::ES256, &k1.key, &valid_claims(), Some("k1"));
    accepted(&with_password(&auth, &t1).await);
    accepted(&with_password(&auth, &t1).await);
    assert_eq!(server.count(), 1, "the document is cached");

    // Key rotation: a token with a new kid makes the cache refetch.
    *document.lock() = jwks_of(&[&k1, &k2]);
    let t2 = mint(Algorithm::ES256, &k2.key, &valid_claims(), Some("k2"));
    accepted(&with_password(&auth, &t2).await);
    assert_eq!(server.count(), 2);

    // A kid the document does not have: refetched, still refused.
    let stranger = ec_signer("k3");
    let t3 = mint(Algorithm::ES256, &stranger.key, &valid_claims(), Some("k3"));
    assert_eq!(with_password(&auth, &t3).await, refused());
    // A known kid with someone else's signature.
    let forged = mint(Algorithm::ES256, &stranger.key, &valid_claims(), Some("k1"));
    assert_eq!(with_password(&auth, &forged).await, refused());
    // HS256 signed with the symmetric key the document lists: never trusted.
    let sym = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"secret"),
        &valid_claims(),
        Some("sym"),
    );
    assert_eq!(with_password(&auth, &sym).await, refused());
    // The last two tokens named known kids: no extra fetch.
    assert_eq!(server.count(), 3);
    let requests = server.requests.lock().clone();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.target == "/jwks")
    );
}

#[tokio::test]
async fn unknown_kids_cannot_hammer_the_jwks_endpoint() {
    let k1 = ec_signer("k1");
    let doc = jwks_of(&[&k1]);
    let server = serve(move |_| (200, doc.clone())).await;
    let auth = JwtAuthenticator::from_config(&config(&format!(
        "[jwks]\nurl = \"{}\"\nmin_refetch_secs = 3600",
        server.url("/")
    )))
    .unwrap();
    assert!(auth.refresh_jwks().await);
    let stranger = ec_signer("x");
    for i in 0..5 {
        let kid: &'static str = Box::leak(format!("random-{i}").into_boxed_str());
        let t = mint(Algorithm::ES256, &stranger.key, &valid_claims(), Some(kid));
        assert_eq!(with_password(&auth, &t).await, refused());
    }
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn unreachable_jwks_refuses_with_server_unavailable() {
    let port = closed_port().await;
    let auth = JwtAuthenticator::from_config(&config(&format!(
        "[jwks]\nurl = \"http://127.0.0.1:{port}/jwks\"\ntimeout_ms = 2000"
    )))
    .unwrap();
    let k1 = ec_signer("k1");
    let t = mint(Algorithm::ES256, &k1.key, &valid_claims(), Some("k1"));
    assert_eq!(
        with_password(&auth, &t).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    assert!(!auth.refresh_jwks().await);
}

#[tokio::test]
async fn keys_are_kept_through_failed_refreshes_only_up_to_max_stale_secs() {
    let k1 = ec_signer("k1");
    let doc = jwks_of(&[&k1]);
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = Arc::clone(&up);
    let server = serve(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            (200, doc.clone())
        } else {
            (503, String::new())
        }
    })
    .await;
    let auth = JwtAuthenticator::from_config(&config(&format!(
        "[jwks]\nurl = \"{}\"\nrefresh_secs = 1\nmin_refetch_secs = 0\nmax_stale_secs = 2",
        server.url("/")
    )))
    .unwrap();
    assert!(auth.refresh_jwks().await);
    let t = mint(Algorithm::ES256, &k1.key, &valid_claims(), Some("k1"));
    up.store(false, std::sync::atomic::Ordering::SeqCst);
    // The endpoint fails from now on. Within max_stale_secs the old keys
    // still verify (an outage of the identity provider does not lock
    // everyone out)...
    accepted(&with_password(&auth, &t).await);
    // ...past it they do not: the deadline passing is what is tested, so
    // this waits for it (2 s, plus a margin).
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        with_password(&auth, &t).await,
        AuthResult::Refuse(ReasonCode::SERVER_UNAVAILABLE)
    );
    // A fetch that succeeds again restores them.
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    accepted(&with_password(&auth, &t).await);
}

#[tokio::test]
async fn encryption_keys_in_a_jwks_are_not_used_to_verify() {
    let signing = ec_signer("sig");
    let enc = ec_signer("enc");
    let ops = ec_signer("ops");
    let mut doc: Value = serde_json::from_str(&jwks_of(&[&signing, &enc, &ops])).unwrap();
    doc["keys"][1]["use"] = json!("enc");
    doc["keys"][2]["key_ops"] = json!(["encrypt"]);
    let doc = doc.to_string();
    let server = serve(move |_| (200, doc.clone())).await;
    let auth =
        JwtAuthenticator::from_config(&config(&format!("[jwks]\nurl = \"{}\"", server.url("/"))))
            .unwrap();
    let good = mint(Algorithm::ES256, &signing.key, &valid_claims(), Some("sig"));
    accepted(&with_password(&auth, &good).await);
    for s in [&enc, &ops] {
        let t = mint(Algorithm::ES256, &s.key, &valid_claims(), Some(s.kid));
        assert_eq!(with_password(&auth, &t).await, refused(), "{}", s.kid);
    }
}

#[tokio::test]
async fn background_refresher_fetches_on_schedule() {
    let k1 = ec_signer("k1");
    let doc = jwks_of(&[&k1]);
    let server = serve(move |_| (200, doc.clone())).await;
    let auth = JwtAuthenticator::from_config(&config(&format!(
        "[jwks]\nurl = \"{}\"\nrefresh_secs = 1",
        server.url("/")
    )))
    .unwrap();
    let task = tokio::spawn(auth.jwks_refresher().unwrap());
    common::wait_until(|| server.count() >= 2).await;
    task.abort();
    // The keys are already there: a CONNECT does not wait for a fetch.
    let before = server.count();
    let t = mint(Algorithm::ES256, &k1.key, &valid_claims(), Some("k1"));
    accepted(&with_password(&auth, &t).await);
    assert_eq!(server.count(), before);
    assert!(hmac_auth("").jwks_refresher().is_none());
}
