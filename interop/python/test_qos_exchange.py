"""Publish -> subscribe exchange between paho clients at every QoS combination."""

from __future__ import annotations

import pytest

from roost_interop import V5, V311, unique

QOS = [0, 1, 2]


def exchange(broker, clients, version, publish_qos, subscribe_qos):
    topic = f"roost-it/{unique('qos')}/data"
    subscriber = clients(broker, version=version)
    subscriber.connect()
    granted = subscriber.subscribe(topic, subscribe_qos)
    assert granted == [subscribe_qos]

    publisher = clients(broker, version=version)
    publisher.connect()
    payloads = [f"message {i} at QoS {publish_qos}".encode() for i in range(3)]
    for payload in payloads:
        # Returns once PUBACK (QoS 1) or PUBCOMP (QoS 2) has arrived.
        publisher.publish(topic, payload, qos=publish_qos)

    received = subscriber.expect_messages(len(payloads))
    assert [m.payload for m in received] == payloads, "messages lost, duplicated or reordered"
    for message in received:
        assert message.topic == topic
        assert message.qos == min(publish_qos, subscribe_qos)
        assert message.retain is False


@pytest.mark.parametrize("subscribe_qos", QOS, ids=lambda q: f"sub{q}")
@pytest.mark.parametrize("publish_qos", QOS, ids=lambda q: f"pub{q}")
def test_v5_mqtt_3_8_4_8_delivered_qos_is_minimum_of_published_and_granted(
    broker, clients, publish_qos, subscribe_qos
):
    exchange(broker, clients, V5, publish_qos, subscribe_qos)


@pytest.mark.parametrize("subscribe_qos", QOS, ids=lambda q: f"sub{q}")
@pytest.mark.parametrize("publish_qos", QOS, ids=lambda q: f"pub{q}")
def test_v311_mqtt_3_8_4_6_delivered_qos_is_minimum_of_published_and_granted(
    broker, clients, publish_qos, subscribe_qos
):
    exchange(broker, clients, V311, publish_qos, subscribe_qos)


@pytest.mark.parametrize("qos", QOS, ids=lambda q: f"qos{q}")
def test_v5_publisher_to_v311_subscriber_and_back(broker, clients, qos):
    """Messages cross protocol versions in both directions."""
    topic = f"roost-it/{unique('mixed')}/data"
    v5 = clients(broker, version=V5)
    v311 = clients(broker, version=V311)
    v5.connect()
    v311.connect()
    v5.subscribe(topic + "/to-v5", 2)
    v311.subscribe(topic + "/to-v311", 2)
    v5.publish(topic + "/to-v311", b"from v5", qos=qos)
    v311.publish(topic + "/to-v5", b"from v311", qos=qos)
    to_v311 = v311.expect_message()
    to_v5 = v5.expect_message()
    assert (to_v311.topic, to_v311.payload, to_v311.qos) == (topic + "/to-v311", b"from v5", qos)
    assert (to_v5.topic, to_v5.payload, to_v5.qos) == (topic + "/to-v5", b"from v311", qos)


@pytest.mark.parametrize("version", [V5, V311], ids=["v5", "v311"])
def test_mqtt_4_6_0_6_messages_of_one_publisher_arrive_in_order(broker, clients, version):
    """Every topic is an Ordered Topic: 50 QoS 1 messages arrive in publish order."""
    topic = f"roost-it/{unique('order')}/seq"
    subscriber = clients(broker, version=version)
    subscriber.connect()
    subscriber.subscribe(topic, 1)
    publisher = clients(broker, version=version)
    publisher.connect()
    payloads = [str(i).encode() for i in range(50)]
    for payload in payloads:
        publisher.publish(topic, payload, qos=1)
    assert [m.payload for m in subscriber.expect_messages(len(payloads))] == payloads
