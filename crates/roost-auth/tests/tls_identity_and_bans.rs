//! The TLS client-certificate authenticator and the ban list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{authenticate, client, client_from};
use roost_auth::banned::BanEntryConfig;
use roost_auth::{
    Ban, BanAuthenticator, BanList, BanTarget, BannedConfig, TlsIdentityAuthenticator,
    TlsIdentityConfig,
};
use roost_hooks::{AuthResult, ReasonCode, TlsIdentity};

fn with_cert(cn: Option<&str>, user: Option<&str>) -> roost_hooks::ClientInfo {
    let subject = cn
        .map(|c| format!("CN={c}"))
        .unwrap_or_else(|| "O=Org".into());
    client("c", user).with_tls(Some(TlsIdentity::new(cn.map(str::to_owned), subject)))
}

#[tokio::test]
async fn certificate_clients_are_accepted_others_ignored() {
    let auth = TlsIdentityAuthenticator::new(TlsIdentityConfig::default());
    let result = authenticate(&auth, &with_cert(Some("dev-1"), Some("x")), None).await;
    assert_eq!(result, AuthResult::Accept(Default::default()));
    assert_eq!(
        authenticate(&auth, &client("c", Some("x")), Some(b"pw")).await,
        AuthResult::Ignore
    );
}

#[tokio::test]
async fn common_name_can_be_required_to_match_and_become_the_user_name() {
    let config: TlsIdentityConfig =
        toml::from_str("require_cn_matches_username = true\nuse_cn_as_username = true").unwrap();
    let auth = TlsIdentityAuthenticator::new(config);
    match authenticate(&auth, &with_cert(Some("dev-1"), Some("dev-1")), None).await {
        AuthResult::Accept(g) => assert_eq!(g.username.as_deref(), Some("dev-1")),
        other => panic!("{other:?}"),
    }
    let refused = AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED);
    assert_eq!(
        authenticate(&auth, &with_cert(Some("dev-1"), Some("dev-2")), None).await,
        refused
    );
    assert_eq!(
        authenticate(&auth, &with_cert(Some("dev-1"), None), None).await,
        refused
    );
    assert_eq!(
        authenticate(&auth, &with_cert(None, Some("dev-1")), None).await,
        refused
    );
    assert!(toml::from_str::<TlsIdentityConfig>("require_cn = true").is_err());
}

#[tokio::test]
async fn a_certificate_without_a_common_name_cannot_stand_for_a_chosen_user_name() {
    // With the CN as the identity, a CN-less certificate must not leave the
    // CONNECT user name (the client's free choice) in its place.
    let config: TlsIdentityConfig = toml::from_str("use_cn_as_username = true").unwrap();
    let auth = TlsIdentityAuthenticator::new(config);
    assert_eq!(
        authenticate(&auth, &with_cert(None, Some("admin")), None).await,
        AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED)
    );
    assert_eq!(
        authenticate(&auth, &with_cert(Some(""), Some("admin")), None).await,
        AuthResult::Refuse(ReasonCode::NOT_AUTHORIZED)
    );
    match authenticate(&auth, &with_cert(Some("dev-1"), Some("admin")), None).await {
        AuthResult::Accept(g) => assert_eq!(g.username.as_deref(), Some("dev-1")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn banned_clients_are_refused_with_0x8a() {
    let list = Arc::new(BanList::new());
    let auth = BanAuthenticator::new(Arc::clone(&list));
    list.add(Ban::new(BanTarget::ClientId("bad-id".into()), None));
    list.add(Ban::new(BanTarget::Username("mallory".into()), None));
    list.add(Ban::new(
        BanTarget::parse("ip:203.0.113.0/24").unwrap(),
        None,
    ));
    let banned = AuthResult::Refuse(ReasonCode::BANNED);
    assert_eq!(
        authenticate(&auth, &client("bad-id", None), None).await,
        banned
    );
    assert_eq!(
        authenticate(&auth, &client("ok", Some("mallory")), None).await,
        banned
    );
    assert_eq!(
        authenticate(&auth, &client_from("ok", None, "203.0.113.9:1"), None).await,
        banned
    );
    assert_eq!(
        authenticate(
            &auth,
            &client_from("ok", None, "[::ffff:203.0.113.9]:1"),
            None
        )
        .await,
        banned
    );
    assert_eq!(
        authenticate(
            &auth,
            &client_from("ok", Some("alice"), "198.51.100.1:1"),
            None
        )
        .await,
        AuthResult::Ignore
    );

    assert!(list.remove(&BanTarget::Username("mallory".into())));
    assert!(!list.remove(&BanTarget::Username("mallory".into())));
    assert_eq!(
        authenticate(&auth, &client("ok", Some("mallory")), None).await,
        AuthResult::Ignore
    );
    assert_eq!(list.list(SystemTime::now()).len(), 2);
}

#[test]
fn bans_expire() {
    let list = BanList::new();
    let now = SystemTime::now();
    list.add(Ban::new(
        BanTarget::ClientId("a".into()),
        Some(now + Duration::from_secs(60)),
    ));
    list.add(Ban::new(
        BanTarget::ClientId("b".into()),
        Some(now - Duration::from_secs(1)),
    ));
    list.add(Ban::new(
        BanTarget::parse("ip:10.0.0.1").unwrap(),
        Some(now + Duration::from_secs(60)),
    ));
    assert!(list.is_banned(&client("a", None), now));
    assert!(!list.is_banned(&client("a", None), now + Duration::from_secs(61)));
    assert!(!list.is_banned(&client("b", None), now));
    assert!(list.is_banned(&client_from("x", None, "10.0.0.1:5"), now));
    assert!(!list.is_banned(
        &client_from("x", None, "10.0.0.1:5"),
        now + Duration::from_secs(61)
    ));
    assert_eq!(list.list(now).len(), 2);
    assert_eq!(list.purge_expired(now), 1);
    assert_eq!(list.purge_expired(now + Duration::from_secs(61)), 2);
    assert!(list.list(now).is_empty());
}

#[test]
fn bans_from_config() {
    let config: BannedConfig = toml::from_str(
        r#"
        [[entries]]
        who = "client:c1"
        [[entries]]
        who = "ip:2001:db8::/32"
        expires_at = 4102444800
        "#,
    )
    .unwrap();
    let list = BanList::from_config(&config).unwrap();
    let bans = list.list(SystemTime::now());
    assert_eq!(bans.len(), 2);
    assert!(bans.contains(&Ban::new(
        BanTarget::parse("ip:2001:db8::/32").unwrap(),
        Some(UNIX_EPOCH + Duration::from_secs(4_102_444_800))
    )));
    for bad in ["all", "host:x", "ip:nope"] {
        let c = BannedConfig {
            entries: vec![BanEntryConfig {
                who: bad.into(),
                expires_at: None,
            }],
        };
        assert!(BanList::from_config(&c).is_err(), "{bad}");
    }
    assert_eq!(
        BanTarget::parse("user:bob").unwrap().to_string(),
        "user:bob"
    );
}

#[test]
fn a_ban_expiry_out_of_the_time_range_is_a_config_error_not_a_panic() {
    // The admin API may build the config from JSON, where u64::MAX is valid.
    let config: BannedConfig = serde_json::from_str(
        r#"{"entries": [{"who": "user:x", "expires_at": 18446744073709551615}]}"#,
    )
    .unwrap();
    let err = BanList::from_config(&config).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}
