//! `[security] acl_wildcards`: under `per_message` (the default), a
//! wildcard subscription that overlaps a deny rule is granted and every
//! message it would bring is checked at delivery, on every delivery path
//! (live, retained on SUBSCRIBE, a parked session's queue, shared groups,
//! the embedding API), including after an ACL reload; under `whole_filter`
//! it is refused, as before.
//!
//! "Not delivered" is asserted without waiting for silence: a marker
//! published after the denied message must be the next thing the
//! subscriber receives (one publisher's messages reach one subscriber in
//! order).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use bytes::Bytes;
use roost_codec::{ProtocolVersion, QoS, ReasonCode};
use roost_testkit::RawClient;
use roost_testkit::packets::{connect, publish, unique_id};

use common::clients::{drop_and_wait, open, open_v5, open_with, sub, subscribed};
use common::{T, TestBroker};

const DENIED: &str = "test/nosubscribe";

/// The interoperability suite's setup: everything allowed but reading one topic.
const ACL: &str = "deny all subscribe test/nosubscribe\nallow all all #\n";

struct Acl {
    broker: TestBroker,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(acl: &str, mode: Option<&str>) -> Acl {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl");
    std::fs::write(&path, acl).unwrap();
    let security = mode.map_or(String::new(), |m| {
        format!("[security]\nacl_wildcards = \"{m}\"\n")
    });
    let toml = format!("{security}[auth.acl_file]\npath = {:?}\n", path_str(&path));
    Acl {
        broker: common::start_with(common::config(&toml), None).await,
        path,
        _dir: dir,
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Publishes through the embedding API (no publisher session).
fn emit(broker: &TestBroker, topic: &str, payload: &'static str, retain: bool) {
    broker.handle.publish(
        topic,
        Bytes::from_static(payload.as_bytes()),
        QoS::AtLeastOnce,
        retain,
    );
}

/// Receives PUBLISHes until `marker` and returns their topics (a few QoS 1
/// messages fit the receive window unacknowledged).
async fn topics_until(client: &mut RawClient, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let p = client.recv_publish(T).await.unwrap();
        let topic = p.topic.to_string();
        if topic == marker {
            return seen;
        }
        seen.push(topic);
    }
}

#[tokio::test]
async fn per_message_wildcards_overlapping_a_deny_are_granted_and_the_denied_topic_is_withheld() {
    let s = start(ACL, None).await;
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let mut hash = open(s.broker.addr, version, "hash").await;
        let mut plus = open(s.broker.addr, version, "plus").await;
        subscribed(&mut hash, "#", QoS::AtMostOnce).await;
        subscribed(&mut plus, "+/+", QoS::AtMostOnce).await;
        let before = s.broker.handle.stats();
        // A client publisher: the live routing path.
        let mut publisher = open_v5(s.broker.addr, "pub").await;
        for topic in [DENIED, "test/ok"] {
            publisher
                .send(publish(topic, &b"x"[..], QoS::AtMostOnce, None))
                .await
                .unwrap();
        }
        for subscriber in [&mut hash, &mut plus] {
            let p = subscriber.recv_publish(T).await.unwrap();
            assert_eq!(&*p.topic, "test/ok", "{version:?}: {DENIED} was delivered");
        }
        let after = s.broker.handle.stats();
        assert_eq!(
            after.deliveries_not_authorized - before.deliveries_not_authorized,
            2,
            "one per subscriber"
        );
        assert!(after.messages_dropped >= before.messages_dropped + 2);
    }
}

/// SUBACK 0x87 (5.0) / 0x80 (3.1.1) for a filter a deny rule covers.
#[tokio::test]
async fn exact_denied_topic_is_refused_0x87_in_v5_and_0x80_in_v311() {
    let s = start(ACL, None).await;
    for (version, refused) in [
        (ProtocolVersion::V5, ReasonCode::NOT_AUTHORIZED),
        (ProtocolVersion::V311, ReasonCode(0x80)),
    ] {
        let mut c = open(s.broker.addr, version, "exact").await;
        assert_eq!(
            sub(&mut c, DENIED, QoS::AtMostOnce).await,
            refused,
            "{version:?}"
        );
        assert_eq!(
            sub(&mut c, "test/#", QoS::AtMostOnce).await.0,
            0,
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn a_retained_message_on_a_denied_topic_is_not_sent_on_subscribe() {
    let s = start(ACL, None).await;
    emit(&s.broker, DENIED, "secret", true);
    emit(&s.broker, "test/ok", "fine", true);
    let mut c = open_v5(s.broker.addr, "retained").await;
    subscribed(&mut c, "#", QoS::AtLeastOnce).await;
    emit(&s.broker, "marker", "m", false);
    assert_eq!(topics_until(&mut c, "marker").await, ["test/ok"]);
    assert_eq!(s.broker.handle.stats().deliveries_not_authorized, 1);
}

#[tokio::test]
async fn a_parked_session_does_not_get_a_denied_message_from_its_queue() {
    let s = start(ACL, None).await;
    let id = unique_id("parked");
    let mut persistent = connect(ProtocolVersion::V5, &id);
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(600);
    let mut c = open_with(s.broker.addr, persistent.clone()).await;
    subscribed(&mut c, "test/+", QoS::AtLeastOnce).await;
    drop_and_wait(&s.broker, c).await;

    emit(&s.broker, DENIED, "secret", false);
    emit(&s.broker, "test/ok", "fine", false);
    emit(&s.broker, "test/marker", "m", false);
    let mut c = open_with(s.broker.addr, persistent).await;
    assert_eq!(topics_until(&mut c, "test/marker").await, ["test/ok"]);
    assert_eq!(s.broker.handle.stats().deliveries_not_authorized, 1);
}

#[tokio::test]
async fn a_shared_subscription_member_does_not_get_a_denied_message() {
    let s = start(ACL, None).await;
    let mut member = open_v5(s.broker.addr, "member").await;
    subscribed(&mut member, "$share/g/#", QoS::AtMostOnce).await;
    emit(&s.broker, DENIED, "secret", false);
    emit(&s.broker, "marker", "m", false);
    assert!(topics_until(&mut member, "marker").await.is_empty());
    assert_eq!(s.broker.handle.stats().deliveries_not_authorized, 1);
}

#[tokio::test]
async fn an_acl_reload_that_denies_a_topic_applies_to_existing_wildcard_subscriptions() {
    // At first `#` is allowed as a whole: its messages are not checked.
    let s = start("allow all all #\n", None).await;
    let mut c = open_v5(s.broker.addr, "reload").await;
    subscribed(&mut c, "#", QoS::AtMostOnce).await;
    emit(&s.broker, DENIED, "before", false);
    emit(&s.broker, "marker", "m", false);
    assert_eq!(topics_until(&mut c, "marker").await, [DENIED]);

    std::fs::write(&s.path, ACL).unwrap();
    assert!(s.broker.handle.reload_auth().is_empty());
    emit(&s.broker, DENIED, "after", false);
    emit(&s.broker, "marker", "m", false);
    assert!(
        topics_until(&mut c, "marker").await.is_empty(),
        "withheld after the reload"
    );
}

#[tokio::test]
async fn whole_filter_mode_refuses_wildcards_that_overlap_a_deny() {
    let s = start(ACL, Some("whole_filter")).await;
    for (version, refused) in [
        (ProtocolVersion::V5, ReasonCode::NOT_AUTHORIZED),
        (ProtocolVersion::V311, ReasonCode(0x80)),
    ] {
        let mut c = open(s.broker.addr, version, "whole").await;
        for filter in ["#", "+/+", "test/#", DENIED] {
            assert_eq!(
                sub(&mut c, filter, QoS::AtMostOnce).await,
                refused,
                "{version:?} {filter}"
            );
        }
        assert_eq!(sub(&mut c, "other/#", QoS::AtMostOnce).await.0, 0);
    }
    let mut c = open_v5(s.broker.addr, "whole-shared").await;
    assert_eq!(
        sub(&mut c, "$share/g/#", QoS::AtMostOnce).await,
        ReasonCode::NOT_AUTHORIZED
    );
}

/// Grants every client a credential whose own read ACL (as JWT claims
/// carry) is `claims/a/#`.
struct Claims;

impl roost_broker::hooks::Authenticator for Claims {
    fn name(&self) -> &str {
        "claims"
    }
    fn authenticate<'a>(
        &'a self,
        _request: &'a roost_broker::hooks::ConnectRequest<'a>,
    ) -> roost_broker::hooks::BoxFuture<'a, roost_broker::hooks::AuthResult> {
        let mut grant = roost_broker::hooks::Grant::default();
        grant.subscribe_acl = Some(vec!["claims/a/#".to_owned()]);
        roost_broker::hooks::ready(roost_broker::hooks::AuthResult::Accept(grant))
    }
}

#[tokio::test]
async fn credential_claims_are_applied_per_message_to_a_wider_wildcard() {
    let broker = common::start_built(
        roost_broker::Broker::builder()
            .config(common::config(""))
            .authenticator(std::sync::Arc::new(Claims)),
    )
    .await;
    let mut c = open_v5(broker.addr, "claims").await;
    // Outside the claims entirely: refused; overlapping them: granted.
    assert_eq!(
        sub(&mut c, "claims/b/#", QoS::AtMostOnce).await,
        ReasonCode::NOT_AUTHORIZED
    );
    subscribed(&mut c, "claims/#", QoS::AtMostOnce).await;
    emit(&broker, "claims/b/x", "no", false);
    emit(&broker, "claims/a/x", "yes", false);
    assert_eq!(
        topics_until(&mut c, "claims/a/x").await,
        Vec::<String>::new()
    );
    assert_eq!(broker.handle.stats().deliveries_not_authorized, 1);
}

/// Starts a broker on a disk store in `dir` with the per-message ACL.
async fn start_on_disk(
    dir: &Path,
) -> (
    std::net::SocketAddr,
    roost_broker::BrokerHandle,
    tokio::task::JoinHandle<()>,
) {
    let acl = roost_auth::AclFile::from_text("test.acl", ACL).unwrap();
    let broker = roost_broker::Broker::builder()
        .config(common::config(""))
        .store(roost_broker::StoreConfig::disk(dir))
        .authorizer(std::sync::Arc::new(acl))
        .bind()
        .await
        .unwrap();
    let addr = broker.local_addrs()[0];
    let handle = broker.handle();
    (addr, handle, tokio::spawn(broker.run()))
}

/// After a restart, a restored session's wildcard subscription is checked
/// with the owner the store recorded: the allowed message is queued for it,
/// the denied one is not.
#[tokio::test]
async fn a_restored_session_is_checked_for_its_stored_owner_before_its_client_returns() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique_id("restored");
    let mut persistent = connect(ProtocolVersion::V5, &id);
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(600);

    let (addr, handle, task) = start_on_disk(dir.path()).await;
    let mut c = open_with(addr, persistent.clone()).await;
    subscribed(&mut c, "test/+", QoS::AtLeastOnce).await;
    c.drop_connection().await.unwrap();
    common::wait_until("the broker saw the close", T, || {
        handle.stats().connections_current == 0
    })
    .await;
    handle.shutdown();
    tokio::time::timeout(T * 3, task).await.unwrap().unwrap();

    let (addr, handle, task) = start_on_disk(dir.path()).await;
    emit_to(&handle, DENIED);
    emit_to(&handle, "test/ok");
    emit_to(&handle, "test/marker");
    let mut c = open_with(addr, persistent).await;
    assert_eq!(topics_until(&mut c, "test/marker").await, ["test/ok"]);
    assert_eq!(handle.stats().deliveries_not_authorized, 1);
    drop(c);
    handle.shutdown();
    tokio::time::timeout(T * 3, task).await.unwrap().unwrap();
}

fn emit_to(handle: &roost_broker::BrokerHandle, topic: &str) {
    handle.publish(topic, Bytes::from_static(b"x"), QoS::AtLeastOnce, false);
}
