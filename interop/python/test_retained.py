"""Retained messages: kept per topic, replaced, given to new subscribers, cleared
by an empty retained message."""

from __future__ import annotations

import pytest

from roost_interop import V5, V311, VERSION_IDS, VERSIONS, unique


def retained_replaced_and_sent_to_late_subscriber(broker, clients, version):
    topic = f"roost-it/{unique('retain')}/state"
    publisher = clients(broker, version=version)
    publisher.connect()
    publisher.publish(topic, b"first", qos=1, retain=True)
    publisher.publish(topic, b"second", qos=1, retain=True)

    late = clients(broker, version=version)
    late.connect()
    late.subscribe(topic, 1)
    message = late.expect_message()
    assert (message.topic, message.payload) == (topic, b"second"), "the newer retained message replaces the older"
    assert message.retain is True, "a message sent because of a new subscription has RETAIN 1"

    # Only one retained message per topic: a sentinel published after shows
    # that "first" is not queued behind "second".
    publisher.publish(topic, b"sentinel", qos=1)
    assert late.expect_message().payload == b"sentinel"


def test_v5_mqtt_3_3_1_5_retained_message_replaced_and_sent_to_late_subscriber(broker, clients):
    retained_replaced_and_sent_to_late_subscriber(broker, clients, V5)


def test_v311_mqtt_3_3_1_6_last_retained_message_sent_to_new_subscription(broker, clients):
    retained_replaced_and_sent_to_late_subscriber(broker, clients, V311)


def empty_retained_message_clears(broker, clients, version):
    topic = f"roost-it/{unique('retain')}/cleared"
    publisher = clients(broker, version=version)
    publisher.connect()
    publisher.publish(topic, b"on", qos=1, retain=True)

    live = clients(broker, version=version)
    live.connect()
    live.subscribe(topic, 1)
    assert live.expect_message().payload == b"on"
    publisher.publish(topic, b"", qos=1, retain=True)
    cleared = live.expect_message()
    assert cleared.payload == b"", "the empty retained message is forwarded to existing subscribers"

    late = clients(broker, version=version)
    late.connect()
    late.subscribe(topic, 1)
    publisher.publish(topic, b"sentinel", qos=1)
    message = late.expect_message()
    assert message.payload == b"sentinel", f"a cleared retained message was delivered: {message.payload!r}"


def test_v5_mqtt_3_3_1_6_empty_retained_message_clears_topic(broker, clients):
    empty_retained_message_clears(broker, clients, V5)


def test_v311_mqtt_3_3_1_10_empty_retained_message_clears_topic(broker, clients):
    empty_retained_message_clears(broker, clients, V311)


def non_retained_publish_keeps_retained(broker, clients, version):
    topic = f"roost-it/{unique('retain')}/kept"
    publisher = clients(broker, version=version)
    publisher.connect()
    publisher.publish(topic, b"retained", qos=1, retain=True)
    publisher.publish(topic, b"not retained", qos=1, retain=False)
    late = clients(broker, version=version)
    late.connect()
    late.subscribe(topic, 1)
    assert late.expect_message().payload == b"retained"


def test_v5_mqtt_3_3_1_8_non_retained_publish_keeps_retained_message(broker, clients):
    non_retained_publish_keeps_retained(broker, clients, V5)


def test_v311_mqtt_3_3_1_12_non_retained_publish_keeps_retained_message(broker, clients):
    non_retained_publish_keeps_retained(broker, clients, V311)


def live_message_has_retain_0(broker, clients, version):
    topic = f"roost-it/{unique('retain')}/live"
    subscriber = clients(broker, version=version)
    subscriber.connect()
    subscriber.subscribe(topic, 1)
    publisher = clients(broker, version=version)
    publisher.connect()
    publisher.publish(topic, b"live", qos=1, retain=True)
    message = subscriber.expect_message()
    assert message.payload == b"live"
    assert message.retain is False, "forwarded to an established subscription: RETAIN 0"


def test_v5_mqtt_3_3_1_12_forwarded_retained_message_has_retain_0(broker, clients):
    """Retain As Published is 0 by default."""
    live_message_has_retain_0(broker, clients, V5)


def test_v311_mqtt_3_3_1_9_forwarded_retained_message_has_retain_0(broker, clients):
    live_message_has_retain_0(broker, clients, V311)


def test_v5_mqtt_3_3_1_13_retain_as_published_keeps_flag(broker, clients):
    topic = f"roost-it/{unique('retain')}/rap"
    subscriber = clients(broker, version=V5)
    subscriber.connect()
    subscriber.subscribe(topic, 1, retain_as_published=True)
    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(topic, b"kept", qos=1, retain=True)
    publisher.publish(topic, b"plain", qos=1, retain=False)
    first, second = subscriber.expect_messages(2)
    assert (first.payload, first.retain) == (b"kept", True)
    assert (second.payload, second.retain) == (b"plain", False)


def test_v5_mqtt_3_3_1_11_retain_handling_2_sends_no_retained(broker, clients):
    topic = f"roost-it/{unique('retain')}/rh2"
    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(topic, b"retained", qos=1, retain=True)
    subscriber = clients(broker, version=V5)
    subscriber.connect()
    subscriber.subscribe(topic, 1, retain_handling=2)
    publisher.publish(topic, b"sentinel", qos=1)
    assert subscriber.expect_message().payload == b"sentinel"


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_retained_messages_matched_by_wildcard_subscription(broker, clients, version):
    base = f"roost-it/{unique('retain')}"
    publisher = clients(broker, version=version)
    publisher.connect()
    expected = {f"{base}/a/x": b"ax", f"{base}/b/x": b"bx"}
    for topic, payload in expected.items():
        publisher.publish(topic, payload, qos=1, retain=True)
    publisher.publish(f"{base}/a/y", b"ay", qos=1, retain=True)
    late = clients(broker, version=version)
    late.connect()
    late.subscribe(f"{base}/+/x", 1)
    received = {m.topic: m.payload for m in late.expect_messages(2)}
    assert received == expected
