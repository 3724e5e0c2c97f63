//! The Redis backend against a real redis-server (started per test):
//! every delta kind, reopen, key layout, credentials, db numbers, format
//! checks and a dropped connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "redis")]

mod common;

use common::redis_server::RedisServer;
use roost_store::redis::{RedisConfig, RedisStore};
use roost_store::{FORMAT_VERSION, Store, StoreError};

fn config(url: String, prefix: &str) -> RedisConfig {
    RedisConfig {
        key_prefix: prefix.into(),
        ..RedisConfig::new(url)
    }
}

fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("raw connection")
}

#[test]
fn redis_restores_every_delta_kind() {
    let server = RedisServer::start(&[]);
    let store = RedisStore::open(&config(server.url("", ""), "t1:")).expect("open");
    common::apply_every_kind(&store);
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn redis_restores_after_reopen_and_prefixes_are_isolated() {
    let server = RedisServer::start(&[]);
    {
        let store = RedisStore::open(&config(server.url("", ""), "a:")).expect("open");
        common::apply_every_kind(&store);
    }
    let reopened = RedisStore::open(&config(server.url("", ""), "a:")).expect("reopen");
    assert_eq!(
        reopened.restore().expect("restore"),
        common::every_kind_snapshot()
    );
    let other = RedisStore::open(&config(server.url("", ""), "b:")).expect("other prefix");
    assert_eq!(
        other.restore().expect("restore"),
        roost_store::Snapshot::default()
    );
}

#[test]
fn every_key_of_a_client_carries_its_hash_tag() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let store = RedisStore::open(&config(url.clone(), "mq:")).expect("open");
    common::apply_every_kind(&store);
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("mq:*")
        .query(&mut raw(&url))
        .expect("keys");
    keys.sort();
    let client_1: Vec<&String> = keys.iter().filter(|k| k.contains("client-1")).collect();
    assert_eq!(
        client_1,
        [
            "mq:{c:client-1}:in",
            "mq:{c:client-1}:inf",
            "mq:{c:client-1}:q",
            "mq:{c:client-1}:s",
            "mq:{c:client-1}:subs"
        ]
    );
    assert!(keys.contains(&"mq:{meta}:format".to_owned()), "{keys:?}");
    assert!(keys.contains(&"mq:{dly}".to_owned()), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("mq:{ret:")), "{keys:?}");
    // The deleted session left nothing behind.
    assert!(!keys.iter().any(|k| k.contains("gone-3")), "{keys:?}");
}

#[test]
fn password_user_and_db_number_come_from_the_url() {
    let server = RedisServer::start(&["--requirepass", "pw"]);
    let url = server.url(":pw@", "/3");
    let store = RedisStore::open(&config(url.clone(), "p:")).expect("open with password");
    common::apply_every_kind(&store);
    let in_db3: i64 = redis::cmd("DBSIZE").query(&mut raw(&url)).expect("dbsize");
    assert!(in_db3 > 0);
    let in_db0: i64 = redis::cmd("DBSIZE")
        .query(&mut raw(&server.url(":pw@", "/0")))
        .expect("dbsize");
    assert_eq!(in_db0, 0);

    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "roost", "on", ">secret", "~*", "+@all"][..])
        .query(&mut raw(&url))
        .expect("acl setuser");
    let as_user = RedisStore::open(&config(server.url("roost:secret@", "/3"), "p:"))
        .expect("open as ACL user");
    assert_eq!(
        as_user.restore().expect("restore"),
        common::every_kind_snapshot()
    );

    match RedisStore::open(&config(server.url(":wrong@", ""), "p:")) {
        Err(StoreError::Backend {
            backend: "redis", ..
        }) => {}
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[test]
fn a_newer_format_version_is_refused() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let _: () = redis::cmd("SET")
        .arg("f:{meta}:format")
        .arg((FORMAT_VERSION + 1).to_string())
        .query(&mut raw(&url))
        .expect("set");
    match RedisStore::open(&config(url, "f:")) {
        Err(StoreError::UnsupportedFormat { found, .. }) => assert_eq!(found, FORMAT_VERSION + 1),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

/// A format-1 prefix is migrated when opened: its session records get an
/// unknown owner (resumed by nobody), its retained messages the migration
/// as their store time, and the prefix is stamped format 2.
#[test]
fn a_format_1_prefix_is_migrated_with_unknown_owners() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let mut conn = raw(&url);
    let _: () = redis::cmd("SET")
        .arg("m:{meta}:format")
        .arg("1")
        .query(&mut conn)
        .expect("set format");
    // Format 1's SessionRecord: expiry 3600 (varint 0x90 0x1c), never disconnected.
    let _: () = redis::cmd("HSET")
        .arg("m:{c:dev}:s")
        .arg("rec")
        .arg(&[0x90u8, 0x1c, 0x00][..])
        .query(&mut conn)
        .expect("hset");
    // Format 1's retained value: the bare StoredMessage.
    let retained = common::message("r/1", b"kept", roost_codec::QoS::AtLeastOnce);
    let _: () = redis::cmd("HSET")
        .arg("m:{ret:0}")
        .arg("r/1")
        .arg(postcard::to_stdvec(&retained).expect("encode"))
        .query(&mut conn)
        .expect("hset retained");
    let before = std::time::SystemTime::now() - std::time::Duration::from_millis(1);
    let store = RedisStore::open(&config(url.clone(), "m:")).expect("open and migrate");
    let after = std::time::SystemTime::now();
    let snapshot = store.restore().expect("restore");
    assert_eq!(snapshot.retained.len(), 1);
    let (topic, record) = &snapshot.retained[0];
    assert_eq!((&**topic, &record.message), ("r/1", &retained));
    assert!(
        (before..=after).contains(&record.stored_at),
        "stored at {:?}, migrated between {before:?} and {after:?}",
        record.stored_at
    );
    assert_eq!(snapshot.sessions.len(), 1);
    assert_eq!(
        snapshot.sessions[0].record,
        roost_store::SessionRecord {
            expiry_interval: 3600,
            disconnected_at: None,
            owner: roost_store::SessionOwner::Unknown,
        }
    );
    let format: String = redis::cmd("GET")
        .arg("m:{meta}:format")
        .query(&mut conn)
        .expect("get format");
    assert_eq!(format, FORMAT_VERSION.to_string());
}

#[test]
fn data_without_a_format_version_is_refused() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let _: () = redis::cmd("HSET")
        .arg(&["x:{dly}", "1", "junk"][..])
        .query(&mut raw(&url))
        .expect("hset");
    assert!(matches!(
        RedisStore::open(&config(url, "x:")),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_garbled_value_is_reported_corrupt() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let store = RedisStore::open(&config(url.clone(), "g:")).expect("open");
    let _: () = redis::cmd("HSET")
        .arg(&["g:{c:c}:s", "rec", "\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}"][..])
        .query(&mut raw(&url))
        .expect("hset");
    assert!(matches!(store.restore(), Err(StoreError::Corrupt(_))));
}

#[test]
fn a_killed_connection_is_reopened_and_the_batch_lands() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let store = RedisStore::open(&config(url.clone(), "k:")).expect("open");
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..])
        .query(&mut raw(&url))
        .expect("client kill");
    common::apply_every_kind(&store);
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn an_unreachable_server_is_an_error_not_a_hang() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cfg = config(format!("redis://127.0.0.1:{port}"), "u:");
    cfg.timeout = std::time::Duration::from_secs(1);
    match RedisStore::open(&cfg) {
        Err(
            e @ StoreError::Unavailable {
                backend: "redis", ..
            },
        ) => assert!(e.is_transient()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_killed_server_is_unavailable_and_the_same_batch_lands_once_it_is_back() {
    let mut server = RedisServer::start(&[]);
    let store = RedisStore::open(&config(server.url("", ""), "gone:")).expect("open");
    server.kill();
    let batch: Vec<roost_store::Delta> = common::every_kind().concat();
    match store.apply(&batch) {
        Err(
            e @ StoreError::Unavailable {
                backend: "redis", ..
            },
        ) => assert!(e.is_transient()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A fresh server (no persistence): the format key is gone, the batch
    // goes to the same store object over a new connection.
    server.restart(&[]);
    store
        .apply(&batch)
        .expect("applied once the server is back");
    let mut conn = raw(&server.url("", ""));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("gone:*")
        .query(&mut conn)
        .expect("keys");
    assert!(!keys.is_empty(), "the batch is in the restarted server");
}

#[test]
fn a_read_only_replica_is_unavailable_until_promoted() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let store = RedisStore::open(&config(url.clone(), "ro:")).expect("open");
    // A replica of a primary that is not there: every write is READONLY,
    // refused inside MULTI (EXECABORT).
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(nowhere)
        .query(&mut raw(&url))
        .expect("replicaof");
    let batch: Vec<roost_store::Delta> = common::every_kind().concat();
    match store.apply(&batch) {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_transient(), "{e}"),
        other => panic!("expected Unavailable (READONLY), got {other:?}"),
    }
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut raw(&url))
        .expect("replicaof no one");
    store.apply(&batch).expect("applied once promoted");
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );
}

#[test]
fn a_wrong_type_is_a_lasting_error_not_an_outage() {
    let server = RedisServer::start(&[]);
    let url = server.url("", "");
    let store = RedisStore::open(&config(url.clone(), "wt:")).expect("open");
    // The delayed-messages hash key holds a string: HSET fails WRONGTYPE.
    let _: () = redis::cmd("SET")
        .arg("wt:{dly}")
        .arg("x")
        .query(&mut raw(&url))
        .expect("set");
    match store.apply(&common::every_kind().concat()) {
        Err(e @ StoreError::Backend { .. }) => assert!(!e.is_transient(), "{e}"),
        other => panic!("expected a lasting Backend error, got {other:?}"),
    }
}

#[test]
fn a_prefix_with_braces_is_refused() {
    let server = RedisServer::start(&[]);
    assert!(matches!(
        RedisStore::open(&config(server.url("", ""), "bad{x}:")),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn rediss_with_a_private_ca_round_trips_and_an_untrusted_server_is_refused() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("server.pem");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    let (cert_arg, key_arg) = (cert_path.to_string_lossy(), key_path.to_string_lossy());
    let server = RedisServer::start_on(
        "--tls-port",
        &[
            "--port",
            "0",
            "--tls-cert-file",
            &cert_arg,
            "--tls-key-file",
            &key_arg,
            "--tls-ca-cert-file",
            &cert_arg,
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let mut cfg = config(url.clone(), "tls:");
    cfg.ca_cert_pem = Some(cert.cert.pem().into_bytes());
    let store = RedisStore::open(&cfg).expect("open over TLS");
    common::apply_every_kind(&store);
    assert_eq!(
        store.restore().expect("restore"),
        common::every_kind_snapshot()
    );

    // Without the private CA the server's certificate is not trusted.
    let mut untrusted = config(url, "tls:");
    untrusted.timeout = std::time::Duration::from_secs(2);
    match RedisStore::open(&untrusted) {
        Err(e) => assert!(e.to_string().to_lowercase().contains("certificate"), "{e}"),
        Ok(_) => panic!("an untrusted server certificate was accepted"),
    }
}

#[test]
fn redis_restores_what_the_model_holds() {
    use proptest::test_runner::{Config, TestRunner};
    // One server for every case (stopped when the test ends); a fresh prefix per case.
    let server = RedisServer::start(&[]);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        ..Config::default()
    });
    let outcome = runner.run(&common::strategy::batches(), |batches| {
        let store =
            RedisStore::open(&config(server.url("", ""), &common::unique("m"))).expect("open");
        let mut model = common::model::Model::default();
        for batch in &batches {
            batch.iter().for_each(|d| model.apply(d));
            store.apply(batch).expect("apply");
        }
        proptest::prop_assert_eq!(store.restore().expect("restore"), model.snapshot());
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
