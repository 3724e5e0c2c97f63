"""Persistent sessions: Session Present, and QoS 1 messages queued while the
client is offline delivered when it resumes."""

from __future__ import annotations

import time

from roost_interop import V5, V311, publish_properties, unique

SESSION_EXPIRY = 300


def persistent(clients, broker, version, client_id, clean=False):
    if version == V5:
        return clients(broker, version=V5, client_id=client_id, clean=clean, session_expiry=SESSION_EXPIRY)
    return clients(broker, version=V311, client_id=client_id, clean=clean)


def test_v5_mqtt_3_2_2_2_clean_start_gives_session_present_0(broker, clients):
    client_id = unique("py-clean")
    first = persistent(clients, broker, V5, client_id)
    first.connect()
    first.disconnect()
    again = persistent(clients, broker, V5, client_id, clean=True)
    assert again.connect().session_present is False


def test_v311_mqtt_3_2_2_1_clean_session_gives_session_present_0(broker, clients):
    client_id = unique("py-clean")
    first = persistent(clients, broker, V311, client_id)
    first.connect()
    first.disconnect()
    again = persistent(clients, broker, V311, client_id, clean=True)
    assert again.connect().session_present is False


def session_present_on_resume(broker, clients, version):
    client_id = unique("py-resume")
    first = persistent(clients, broker, version, client_id)
    assert first.connect().session_present is False, "no session existed for a new client id"
    first.disconnect()
    resumed = persistent(clients, broker, version, client_id)
    assert resumed.connect().session_present is True


def test_v5_mqtt_3_2_2_3_session_present_1_when_session_resumes(broker, clients):
    session_present_on_resume(broker, clients, V5)


def test_v311_mqtt_3_2_2_2_v311_mqtt_3_2_2_3_session_present_1_only_when_session_resumes(broker, clients):
    session_present_on_resume(broker, clients, V311)


def offline_messages_delivered_on_resume(broker, clients, version):
    client_id = unique("py-offline")
    topic = f"roost-it/{unique('offline')}/inbox"
    subscriber = persistent(clients, broker, version, client_id)
    subscriber.connect()
    subscriber.subscribe(topic, 1)
    subscriber.disconnect()

    publisher = clients(broker, version=version)
    publisher.connect()
    payloads = [f"queued {i}".encode() for i in range(3)]
    for payload in payloads:
        publisher.publish(topic, payload, qos=1)

    resumed = persistent(clients, broker, version, client_id)
    assert resumed.connect().session_present is True
    received = resumed.expect_messages(len(payloads))
    assert [m.payload for m in received] == payloads
    assert all(m.qos == 1 for m in received)
    # The subscription is part of the session: new messages still arrive.
    publisher.publish(topic, b"live", qos=1)
    assert resumed.expect_message().payload == b"live"


def test_v5_mqtt_3_1_2_23_qos1_messages_queued_while_offline_delivered_on_resume(broker, clients):
    offline_messages_delivered_on_resume(broker, clients, V5)


def test_v311_mqtt_3_1_2_5_qos1_messages_queued_while_offline_delivered_on_resume(broker, clients):
    offline_messages_delivered_on_resume(broker, clients, V311)


def test_v5_mqtt_3_3_2_5_message_expired_while_offline_is_not_delivered(broker, clients):
    client_id = unique("py-expiry")
    topic = f"roost-it/{unique('expiry')}/inbox"
    subscriber = persistent(clients, broker, V5, client_id)
    subscriber.connect()
    subscriber.subscribe(topic, 1)
    subscriber.disconnect()

    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(topic, b"expires", qos=1, properties=publish_properties(MessageExpiryInterval=1))
    publisher.publish(topic, b"stays", qos=1)
    # The passing of time is the stimulus here: the first message's 1 s expiry
    # interval must run out while the subscriber is offline.
    time.sleep(2.5)

    resumed = persistent(clients, broker, V5, client_id)
    assert resumed.connect().session_present is True
    message = resumed.expect_message()
    assert message.payload == b"stays", "the expired message was delivered"
