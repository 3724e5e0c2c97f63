//! Interop with rumqttc (MQTT 5 `rumqttc::v5` and MQTT 3.1.1 `rumqttc`)
//! against the `roost` binary started on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use roost_testkit::{BrokerProcess, TIMEOUT, packets::unique_id};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn start_broker() -> BrokerProcess {
    BrokerProcess::start(env!("CARGO_BIN_EXE_roost")).expect("start roost")
}

/// Waits for the next event that `pick` accepts, skipping others (PINGRESP,
/// acknowledgements the test does not look at).
async fn next<E: std::fmt::Debug, T>(
    events: &mut mpsc::UnboundedReceiver<Result<E, String>>,
    what: &str,
    mut pick: impl FnMut(E) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Some(Ok(event)) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Some(Err(error)) => panic!("connection failed while waiting for {what}: {error}"),
                None => panic!("event loop ended while waiting for {what}"),
            }
        }
    };
    match timeout(TIMEOUT, wait).await {
        Ok(found) => found,
        Err(_) => panic!("no {what} within {TIMEOUT:?}"),
    }
}

/// The MQTT 5 (`rumqttc::v5`) and MQTT 3.1.1 (`rumqttc`) clients have the same
/// shape with different types: one template, instantiated once per version.
macro_rules! client_module {
    (mod $name:ident { $($imports:item)* }, id_prefix = $prefix:literal $(,)?) => {
        mod $name {
            $($imports)*
            use bytes::Bytes;

            use super::*;

            pub(super) type Events = mpsc::UnboundedReceiver<Result<Packet, String>>;

            /// Connects a client and returns it with the stream of packets it receives.
            pub(super) async fn connect(broker: &BrokerProcess) -> (AsyncClient, Events) {
                let addr = broker.addr();
                let mut options = MqttOptions::new(unique_id($prefix), addr.ip().to_string(), addr.port());
                options.set_keep_alive(Duration::from_secs(30));
                let (client, eventloop) = AsyncClient::new(options, 64);
                let (tx, mut events) = mpsc::unbounded_channel();
                tokio::spawn(drive(eventloop, tx));
                let connack = next(&mut events, "CONNACK", |p| match p {
                    Packet::ConnAck(ack) => Some(ack),
                    _ => None,
                })
                .await;
                assert_eq!(connack.code, ConnectReturnCode::Success);
                (client, events)
            }

            /// Polls the event loop (which also sends the client's requests) and
            /// forwards every incoming packet, or the connection error that ends it.
            async fn drive(mut eventloop: EventLoop, tx: mpsc::UnboundedSender<Result<Packet, String>>) {
                loop {
                    let sent = match eventloop.poll().await {
                        Ok(Event::Incoming(packet)) => tx.send(Ok(packet)),
                        Ok(Event::Outgoing(_)) => Ok(()),
                        Err(error) => {
                            let _ = tx.send(Err(error.to_string()));
                            return;
                        }
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            }

            pub(super) async fn subscribe(client: &AsyncClient, events: &mut Events, filter: &str, qos: QoS) {
                client.subscribe(filter, qos).await.unwrap();
                let suback = next(events, "SUBACK", |p| match p {
                    Packet::SubAck(ack) => Some(ack),
                    _ => None,
                })
                .await;
                assert_eq!(suback.return_codes, vec![SubscribeReasonCode::Success(qos)]);
            }

            /// Waits until the QoS flow of the last PUBLISH has completed.
            pub(super) async fn await_ack(events: &mut Events, qos: QoS) {
                match qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => next(events, "PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await,
                    QoS::ExactlyOnce => next(events, "PUBCOMP", |p| matches!(p, Packet::PubComp(_)).then_some(())).await,
                }
            }

            /// Publishes at `qos` to a subscription granted at each QoS in
            /// turn: every delivery is at the minimum of the two.
            pub(super) async fn exchange(qos: QoS) {
                let broker = start_broker();
                for granted in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                    exchange_granted(&broker, qos, granted).await;
                }
            }

            async fn exchange_granted(broker: &BrokerProcess, qos: QoS, granted: QoS) {
                let topic = format!("roost-it/{}/data", unique_id($prefix));
                let (subscriber, mut sub_events) = connect(broker).await;
                subscribe(&subscriber, &mut sub_events, &topic, granted).await;
                let (publisher, mut pub_events) = connect(broker).await;
                let delivered = std::cmp::min_by_key(qos, granted, |q| *q as u8);
                let payloads: Vec<Bytes> = (0..3).map(|i| Bytes::from(format!("message {i} at {qos:?}"))).collect();
                for payload in &payloads {
                    publisher.publish(&topic, qos, false, payload.clone()).await.unwrap();
                    await_ack(&mut pub_events, qos).await;
                }
                for expected in &payloads {
                    let publish = next(&mut sub_events, "PUBLISH", |p| match p {
                        Packet::Publish(publish) => Some(publish),
                        _ => None,
                    })
                    .await;
                    assert_eq!(AsRef::<[u8]>::as_ref(&publish.topic), topic.as_bytes());
                    assert_eq!(&publish.payload, expected, "lost, duplicated or reordered");
                    assert_eq!(publish.qos, delivered, "min(published {qos:?}, granted {granted:?})");
                }
            }
        }
    };
}

client_module!(
    mod v5 {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, SubscribeReasonCode};
        use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
    },
    id_prefix = "rumqttc-v5"
);

client_module!(
    mod v311 {
        use rumqttc::{
            AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS,
            SubscribeReasonCode,
        };
    },
    id_prefix = "rumqttc-v4"
);

#[tokio::test]
async fn v5_mqtt_3_8_4_8_rumqttc_qos0_exchange() {
    v5::exchange(rumqttc::v5::mqttbytes::QoS::AtMostOnce).await;
}

#[tokio::test]
async fn v5_mqtt_3_8_4_8_rumqttc_qos1_exchange() {
    v5::exchange(rumqttc::v5::mqttbytes::QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn v5_mqtt_3_8_4_8_rumqttc_qos2_exchange() {
    v5::exchange(rumqttc::v5::mqttbytes::QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn v311_mqtt_3_8_4_6_rumqttc_qos0_exchange() {
    v311::exchange(rumqttc::QoS::AtMostOnce).await;
}

#[tokio::test]
async fn v311_mqtt_3_8_4_6_rumqttc_qos1_exchange() {
    v311::exchange(rumqttc::QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn v311_mqtt_3_8_4_6_rumqttc_qos2_exchange() {
    v311::exchange(rumqttc::QoS::ExactlyOnce).await;
}

#[tokio::test]
async fn v5_mqtt_3_3_2_17_v5_mqtt_3_3_2_18_rumqttc_user_properties_forwarded_in_order() {
    use bytes::Bytes;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};

    let broker = start_broker();
    let topic = format!("roost-it/{}/props", unique_id("rumqttc-v5"));
    let (subscriber, mut sub_events) = v5::connect(&broker).await;
    v5::subscribe(&subscriber, &mut sub_events, &topic, QoS::AtLeastOnce).await;
    let (publisher, mut pub_events) = v5::connect(&broker).await;
    let user_properties: Vec<(String, String)> = [("z", "1"), ("a", "2"), ("z", "3")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let properties = PublishProperties {
        user_properties: user_properties.clone(),
        content_type: Some("text/plain".to_owned()),
        ..PublishProperties::default()
    };
    publisher
        .publish_with_properties(
            &topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from_static(b"x"),
            properties,
        )
        .await
        .unwrap();
    v5::await_ack(&mut pub_events, QoS::AtLeastOnce).await;
    let publish = next(&mut sub_events, "PUBLISH", |p| match p {
        Packet::Publish(publish) => Some(publish),
        _ => None,
    })
    .await;
    let received = publish.properties.expect("PUBLISH properties");
    assert_eq!(received.user_properties, user_properties);
    assert_eq!(received.content_type.as_deref(), Some("text/plain"));
}
