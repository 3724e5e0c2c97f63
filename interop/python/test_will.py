"""Will messages: published when a connection ends without DISCONNECT, discarded
on a clean DISCONNECT."""

from __future__ import annotations

import pytest

from roost_interop import V5, V311, VERSION_IDS, VERSIONS, unique, will_properties


def watcher_and_will_client(broker, clients, version, will_topic, **will):
    watcher = clients(broker, version=version)
    watcher.connect()
    watcher.subscribe(will_topic, 1)
    dying = clients(broker, version=version)
    dying.will_set(will_topic, **will)
    dying.connect()
    return watcher, dying


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_mqtt_3_1_2_8_will_published_when_connection_closes_without_disconnect(broker, clients, version):
    will_topic = f"roost-it/{unique('will')}/status"
    watcher, dying = watcher_and_will_client(broker, clients, version, will_topic, payload=b"gone", qos=1)
    dying.drop()
    message = watcher.expect_message()
    assert (message.topic, message.payload) == (will_topic, b"gone")
    assert message.retain is False, "Will Retain 0: published as a non-retained message"


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_mqtt_3_14_4_3_will_discarded_on_clean_disconnect(broker, clients, version):
    will_topic = f"roost-it/{unique('will')}/status"
    watcher, leaving = watcher_and_will_client(broker, clients, version, will_topic, payload=b"gone", qos=1)
    leaving.disconnect()
    # The broker read the DISCONNECT before the connection closed; a message
    # published to the will topic afterwards must be the first thing the watcher gets.
    sentinel = clients(broker, version=version)
    sentinel.connect()
    sentinel.publish(will_topic, b"sentinel", qos=1)
    message = watcher.expect_message()
    assert message.payload == b"sentinel", f"will published after a clean DISCONNECT: {message.payload!r}"


def will_with_retain_is_retained(broker, clients, version):
    will_topic = f"roost-it/{unique('will')}/retained"
    watcher, dying = watcher_and_will_client(
        broker, clients, version, will_topic, payload=b"offline", qos=1, retain=True
    )
    dying.drop()
    assert watcher.expect_message().payload == b"offline"
    late = clients(broker, version=version)
    late.connect()
    late.subscribe(will_topic, 1)
    message = late.expect_message()
    assert (message.payload, message.retain) == (b"offline", True)


def test_v5_mqtt_3_1_2_15_will_with_retain_published_as_retained(broker, clients):
    will_with_retain_is_retained(broker, clients, V5)


def test_v311_mqtt_3_1_2_17_will_with_retain_published_as_retained(broker, clients):
    will_with_retain_is_retained(broker, clients, V311)


def test_v5_mqtt_3_1_3_10_will_properties_forwarded_with_user_property_order(broker, clients):
    will_topic = f"roost-it/{unique('will')}/props"
    user_properties = [("z", "1"), ("a", "2"), ("z", "3")]
    props = will_properties(
        UserProperty=user_properties, ContentType="text/plain", ResponseTopic=f"{will_topic}/reply"
    )
    watcher, dying = watcher_and_will_client(
        broker, clients, V5, will_topic, payload=b"gone", qos=1, properties=props
    )
    dying.drop()
    message = watcher.expect_message()
    assert message.payload == b"gone"
    assert message.properties.UserProperty == user_properties
    assert message.properties.ContentType == "text/plain"
    assert message.properties.ResponseTopic == f"{will_topic}/reply"
