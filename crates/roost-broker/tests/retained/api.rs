//! The retained-message API of `BrokerHandle`: get, set, delete, count and
//! paginated listing by filter.

use super::*;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use bytestring::ByteString;
use roost_broker::{BrokerHandle, RetainedError};
use roost_codec::PublishProperties;

use common::barrier::next_is_broker_marker;
use common::wait_until;

fn set(handle: &BrokerHandle, topic: &str, payload: &'static [u8]) {
    handle
        .retained_set(
            topic,
            Bytes::from_static(payload),
            QoS::AtLeastOnce,
            PublishProperties::default(),
        )
        .unwrap();
}

/// Every topic of a listing, following `next` from page to page; checks each
/// page holds at most `limit` messages.
fn list_all(handle: &BrokerHandle, filter: &str, limit: usize) -> Vec<String> {
    let mut topics = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let page = handle
            .retained_list(filter, after.as_deref(), limit)
            .unwrap();
        assert!(page.messages.len() <= limit);
        topics.extend(page.messages.iter().map(|m| m.topic.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => return topics,
        }
    }
    panic!("listing {filter} never ended");
}

fn rich_properties() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(true),
        content_type: Some(ByteString::from("text/plain")),
        response_topic: Some(ByteString::from("api/reply")),
        correlation_data: Some(Bytes::from_static(b"corr")),
        user_properties: vec![(ByteString::from("k"), ByteString::from("v"))],
        ..PublishProperties::default()
    }
}

#[tokio::test]
async fn retained_set_get_and_delete_through_the_handle() {
    let broker = common::start().await;
    let handle = &broker.handle;
    let before = SystemTime::now();
    handle
        .retained_set(
            "api/t",
            Bytes::from_static(b"hello"),
            QoS::ExactlyOnce,
            rich_properties(),
        )
        .unwrap();
    let after = SystemTime::now();
    let got = handle.retained_get("api/t").expect("stored");
    assert_eq!(
        (&*got.topic, &got.payload[..], got.qos),
        ("api/t", &b"hello"[..], QoS::ExactlyOnce)
    );
    assert_eq!(got.properties, rich_properties());
    assert_eq!((got.publisher, got.expires_in), (None, None));
    assert!(before <= got.stored_at && got.stored_at <= after);
    assert_eq!(handle.retained_count(), 1);
    assert_eq!(handle.stats().retained_bytes, 5);

    set(handle, "api/t", b"hi");
    assert_eq!(handle.retained_count(), 1);
    assert_eq!(handle.stats().retained_bytes, 2);

    assert!(handle.retained_delete("api/t"));
    assert!(!handle.retained_delete("api/t"));
    assert!(handle.retained_get("api/t").is_none());
    assert_eq!(
        (handle.retained_count(), handle.stats().retained_bytes),
        (0, 0)
    );
}

#[tokio::test]
async fn retained_set_refuses_what_a_retained_publish_could_not_store() {
    let broker = common::start_with(
        common::config("[mqtt]\nmax_retained_messages = 1\nmax_retained_payload = 3\n"),
        None,
    )
    .await;
    let handle = &broker.handle;
    let try_set = |topic: &str, payload: &'static [u8]| {
        handle.retained_set(
            topic,
            Bytes::from_static(payload),
            QoS::AtMostOnce,
            PublishProperties::default(),
        )
    };
    for bad in ["", "a/+", "a/#", "a\0b"] {
        assert!(
            matches!(try_set(bad, b"x"), Err(RetainedError::InvalidTopic(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        try_set("lim/a", b"1234"),
        Err(RetainedError::PayloadTooLarge { size: 4, limit: 3 })
    );
    try_set("lim/a", b"123").unwrap();
    assert_eq!(
        try_set("lim/b", b"1"),
        Err(RetainedError::StoreFull { limit: 1 })
    );
    try_set("lim/a", b"new").unwrap();
    assert_eq!(handle.stats().retained_refused, 2);
    // An empty payload deletes, as a retained PUBLISH would.
    try_set("lim/a", b"").unwrap();
    assert_eq!(handle.retained_count(), 0);
    try_set("lim/b", b"1").unwrap();
}

#[tokio::test]
async fn retained_set_is_refused_when_retain_is_unavailable() {
    let broker =
        common::start_with(common::config("[mqtt]\nretain_available = false\n"), None).await;
    let result = broker.handle.retained_set(
        "off/t",
        Bytes::from_static(b"x"),
        QoS::AtMostOnce,
        PublishProperties::default(),
    );
    assert_eq!(result, Err(RetainedError::Unavailable));
}

#[tokio::test]
async fn a_retained_message_set_through_the_api_goes_to_new_subscribers_only() {
    let broker = common::start().await;
    for version in BOTH {
        let mut existing = open(broker.addr, version, "api-old").await;
        sub(&mut existing, "apis/#", QoS::AtLeastOnce).await;
        broker
            .handle
            .retained_set(
                "apis/t",
                Bytes::from_static(b"set"),
                QoS::AtLeastOnce,
                rich_properties(),
            )
            .unwrap();
        // Stored, not routed: the existing subscriber's next message is the marker.
        next_is_broker_marker(&broker, &mut existing, "apis/marker").await;

        let got = retained_for(broker.addr, version, "apis/t").await;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                &*got[0].topic,
                &got[0].payload[..],
                got[0].qos,
                got[0].retain
            ),
            ("apis/t", &b"set"[..], QoS::AtLeastOnce, true)
        );
        if version.is_v5() {
            assert_eq!(
                got[0].properties.user_properties,
                rich_properties().user_properties
            );
            assert_eq!(
                got[0].properties.content_type.as_deref(),
                Some("text/plain")
            );
        }
        assert!(broker.handle.retained_delete("apis/t"));
    }
}

#[tokio::test]
async fn v5_mqtt_3_3_2_6_retained_message_set_through_the_api_is_sent_with_the_remaining_expiry() {
    let broker = common::start().await;
    let properties = PublishProperties {
        message_expiry_interval: Some(30),
        ..PublishProperties::default()
    };
    broker
        .handle
        .retained_set(
            "apie/t",
            Bytes::from_static(b"x"),
            QoS::AtMostOnce,
            properties,
        )
        .unwrap();
    // The remaining interval is rounded up: it reads 29 once a second passed.
    wait_until("a second in the store", Duration::from_secs(10), || {
        broker
            .handle
            .retained_get("apie/t")
            .and_then(|m| m.properties.message_expiry_interval)
            .is_some_and(|left| left <= 29)
    })
    .await;
    let got = retained_for(broker.addr, ProtocolVersion::V5, "apie/t").await;
    let left = got[0].properties.message_expiry_interval.unwrap();
    assert!((1..=29).contains(&left), "{left}");
}

#[tokio::test]
async fn retained_list_pages_through_a_filter_in_topic_order() {
    let broker = common::start().await;
    let handle = &broker.handle;
    let mut expected = Vec::new();
    // Stored out of order; listed in topic order.
    for i in (0..25).rev() {
        let topic = format!("pg/{i:02}");
        set(handle, &topic, b"p");
        expected.push(topic);
    }
    expected.sort();
    for other in ["pg/05/deep", "pgx/1", "other/1", "pg"] {
        set(handle, other, b"o");
    }
    let first = handle.retained_list("pg/+", None, 10).unwrap();
    assert_eq!(first.messages.len(), 10);
    assert_eq!(first.next.as_deref(), Some("pg/09"));
    assert_eq!(list_all(handle, "pg/+", 10), expected);
    assert_eq!(list_all(handle, "pg/+", 1000), expected);

    let mut below: Vec<String> = expected.clone();
    below.insert(0, "pg".into());
    below.insert(7, "pg/05/deep".into());
    assert_eq!(
        list_all(handle, "pg/#", 7),
        below,
        "`#` includes the parent"
    );
    assert_eq!(list_all(handle, "+/1", 3), vec!["other/1", "pgx/1"]);
    assert_eq!(list_all(handle, "#", 4).len(), 29);
    // A topic name is a lookup.
    assert_eq!(list_all(handle, "pg/05", 10), vec!["pg/05"]);
    assert!(list_all(handle, "pg/99", 10).is_empty());
}

#[tokio::test]
async fn retained_list_pagination_is_stable_under_concurrent_inserts_and_deletes() {
    let broker = common::start().await;
    let handle = &broker.handle;
    let original: Vec<String> = (0..30).map(|i| format!("st/{i:02}")).collect();
    for topic in &original {
        set(handle, topic, b"s");
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut round = 0;
    loop {
        let page = handle.retained_list("st/#", after.as_deref(), 7).unwrap();
        seen.extend(page.messages.iter().map(|m| m.topic.to_string()));
        // Between pages: insert before and after the cursor, and delete and
        // re-insert a topic not yet listed.
        set(handle, &format!("st/00-{round}"), b"n");
        set(handle, &format!("st/99-{round}"), b"n");
        assert!(handle.retained_delete("st/29"));
        set(handle, "st/29", b"again");
        round += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no topic listed twice: {seen:?}");
    for topic in &original {
        assert!(unique.contains(topic), "{topic} missing");
    }
    assert!(
        seen.contains(&"st/99-0".to_string()),
        "inserted ahead of the cursor"
    );
    assert!(
        !seen.contains(&"st/00-0".to_string()),
        "inserted behind the cursor"
    );
}

#[tokio::test]
async fn retained_list_returns_every_stored_topic_once_while_another_thread_writes() {
    let broker = common::start().await;
    let original: Vec<String> = (0..200).map(|i| format!("cc/{i:03}")).collect();
    for topic in &original {
        set(&broker.handle, topic, b"c");
    }
    let writer = {
        let handle = broker.handle.clone();
        std::thread::spawn(move || {
            for i in 0..2000 {
                // New topics all over the key space, and churn on one of them.
                set(&handle, &format!("cc/{:03}-{i}", i % 200), b"w");
                handle.retained_delete(&format!("cc/{:03}-{}", i % 200, i / 2));
            }
        })
    };
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = broker
            .handle
            .retained_list("cc/+", after.as_deref(), 5)
            .unwrap();
        seen.extend(page.messages.iter().map(|m| m.topic.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    writer.join().unwrap();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a topic was listed twice");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    assert_eq!(sorted, seen, "listed in topic order");
    for topic in &original {
        assert!(unique.contains(topic), "{topic} missing");
    }
}

#[tokio::test]
async fn mqtt_4_7_2_1_retained_list_wildcards_skip_dollar_topics() {
    let broker = common::start().await;
    let handle = &broker.handle;
    set(handle, "$app/x", b"d");
    set(handle, "app/x", b"a");
    assert_eq!(list_all(handle, "#", 10), vec!["app/x"]);
    assert_eq!(list_all(handle, "+/x", 10), vec!["app/x"]);
    assert_eq!(list_all(handle, "$app/#", 10), vec!["$app/x"]);
}

#[tokio::test]
async fn retained_list_leaves_out_expired_messages() {
    let broker = common::start().await;
    let handle = &broker.handle;
    let expiring = PublishProperties {
        message_expiry_interval: Some(1),
        ..PublishProperties::default()
    };
    handle
        .retained_set("lx/a", Bytes::from_static(b"a"), QoS::AtMostOnce, expiring)
        .unwrap();
    set(handle, "lx/b", b"b");
    assert_eq!(list_all(handle, "lx/+", 10), vec!["lx/a", "lx/b"]);
    wait_until("lx/a to expire", Duration::from_secs(10), || {
        list_all(handle, "lx/+", 10) == ["lx/b"]
    })
    .await;
    assert_eq!(handle.stats().retained_expired, 1);
}

#[tokio::test]
async fn retained_list_refuses_invalid_and_shared_filters() {
    let broker = common::start().await;
    for bad in ["", "a/#/b", "a+", "$share/g/a/#"] {
        assert!(
            matches!(
                broker.handle.retained_list(bad, None, 10),
                Err(RetainedError::InvalidFilter(_))
            ),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_selective_listing_over_a_large_store_ends_pages_early_with_a_cursor() {
    let broker = common::start().await;
    let handle = &broker.handle;
    // More non-matching topics than one call scans, then the only match.
    for i in 0..10_050 {
        handle
            .retained_set(
                &format!("bulk/{i:05}"),
                Bytes::from_static(b"b"),
                QoS::AtMostOnce,
                PublishProperties::default(),
            )
            .unwrap();
    }
    set(handle, "zz/needle", b"n");
    let first = handle.retained_list("+/needle", None, 10).unwrap();
    assert!(first.messages.is_empty());
    let cursor = first.next.expect("the scan stopped early, not at the end");
    let second = handle.retained_list("+/needle", Some(&cursor), 10).unwrap();
    let topics: Vec<_> = second.messages.iter().map(|m| &*m.topic).collect();
    assert_eq!(topics, vec!["zz/needle"]);
    assert_eq!(second.next, None);
}
