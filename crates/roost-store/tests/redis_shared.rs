//! The Redis store shared by a cluster's nodes (`RedisStore::open_shared`,
//! docs/cluster.md): a client's rows are written only under the token the
//! owner record names (or names as the owner handing over), and one
//! client's session is loaded on demand.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use common::redis_server::RedisServer;
use roost_codec::{QoS, SubscriptionOptions};
use roost_store::redis::{RedisConfig, RedisStore};
use roost_store::{Delta, Fences, SessionOwner, SessionRecord, Store, SubscriptionRecord};

/// Token 1 as Redis spells it (`roost_store::token_text(1)`).
const T1: &str = "00000000000000000000000000000001";

fn upsert(client_id: &str, filter: &str) -> Delta {
    Delta::SessionUpsert {
        client_id: client_id.into(),
        record: SessionRecord {
            expiry_interval: 60,
            disconnected_at: Some(SystemTime::now()),
            owner: SessionOwner::Anonymous,
        },
        subscriptions: vec![(
            filter.into(),
            SubscriptionRecord {
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..SubscriptionOptions::default()
                },
                identifier: None,
            },
        )],
    }
}

fn filters(store: &RedisStore, client_id: &str) -> Vec<String> {
    let (session, _) = store.load_session(client_id).expect("load");
    session
        .map(|s| s.subscriptions.iter().map(|(f, _)| f.to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_shared_store_writes_a_client_only_under_the_owner_records_token() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let mut raw = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .unwrap();
    let config = RedisConfig {
        key_prefix: "cl:".into(),
        ..RedisConfig::new(url)
    };
    let fences = Arc::new(Fences::default());
    let store = RedisStore::open_shared(&config, Arc::clone(&fences)).expect("open");
    let own = "cl:{c:c1}:own";
    let set_owner = |raw: &mut redis::Connection, fields: &[(&str, &str)]| {
        redis::cmd("DEL").arg(own).query::<()>(raw).unwrap();
        redis::cmd("HSET")
            .arg(own)
            .arg(fields)
            .query::<()>(raw)
            .unwrap();
    };

    // No token here: nothing written.
    store.apply(&[upsert("c1", "none")]).unwrap();
    assert!(filters(&store, "c1").is_empty(), "unowned: not written");

    // The record names this node's token: written.
    fences.set("c1", 1);
    assert_eq!(roost_store::token_text(1), T1);
    set_owner(
        &mut raw,
        &[("node", "a"), ("token", T1), ("state", "connected")],
    );
    store.apply(&[upsert("c1", "mine")]).unwrap();
    assert_eq!(filters(&store, "c1"), ["mine"]);

    // Taken over, not settled: the old owner may still flush.
    set_owner(
        &mut raw,
        &[
            ("node", "b"),
            ("token", "t2"),
            ("state", "taking_over"),
            ("from", T1),
        ],
    );
    store.apply(&[upsert("c1", "flushed")]).unwrap();
    assert_eq!(filters(&store, "c1"), ["flushed"]);

    // Settled by the new owner: the old one's writes are refused.
    set_owner(
        &mut raw,
        &[("node", "b"), ("token", "t2"), ("state", "connected")],
    );
    store.apply(&[upsert("c1", "stale")]).unwrap();
    assert_eq!(
        filters(&store, "c1"),
        ["flushed"],
        "a stale owner cannot write"
    );
    assert_eq!(store.fenced_writes(), 1);
    // Restore gives nothing: sessions are loaded when their clients connect.
    assert_eq!(store.restore().unwrap(), roost_store::Snapshot::default());
}
