"""Subscription features: identifiers, No Local, shared subscriptions, wildcards
and `$` topics."""

from __future__ import annotations

import queue
import time

import pytest

from roost_interop import TIMEOUT, V5, VERSION_IDS, VERSIONS, unique


def test_v5_mqtt_3_3_4_3_subscription_identifier_sent_with_message(broker, clients):
    topic = f"roost-it/{unique('subid')}/data"
    subscriber = clients(broker, version=V5)
    subscriber.connect()
    subscriber.subscribe(topic, 1, subscription_id=42)
    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(topic, b"x", qos=1)
    message = subscriber.expect_message()
    assert message.properties.SubscriptionIdentifier == [42]


def test_v5_mqtt_3_3_4_4_v5_mqtt_3_3_4_5_overlapping_subscriptions_carry_their_identifiers(broker, clients):
    base = f"roost-it/{unique('subid')}"
    subscriber = clients(broker, version=V5)
    subscriber.connect()
    subscriber.subscribe(f"{base}/+", 1, subscription_id=7)
    subscriber.subscribe(f"{base}/#", 1, subscription_id=9)
    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(f"{base}/a", b"x", qos=1)
    first = subscriber.expect_message()
    ids = sorted(first.properties.SubscriptionIdentifier)
    if ids == [7, 9]:
        return  # one copy carrying both identifiers (MQTT-3.3.4-4)
    # Otherwise one copy per subscription, each with its own identifier (MQTT-3.3.4-5).
    second = subscriber.expect_message()
    assert sorted(ids + list(second.properties.SubscriptionIdentifier)) == [7, 9]


def test_v5_mqtt_3_8_3_3_no_local_message_not_sent_back_to_publisher(broker, clients):
    topic = f"roost-it/{unique('nolocal')}/chat"
    talker = clients(broker, version=V5)
    talker.connect()
    talker.subscribe(topic, 1, no_local=True)
    other = clients(broker, version=V5)
    other.connect()
    other.subscribe(topic, 1)

    talker.publish(topic, b"own", qos=1)
    assert other.expect_message().payload == b"own", "other subscribers still get the message"
    # The PUBACK for "own" came after routing, so a wrongly routed copy would
    # already sit ahead of this one in the talker's queue.
    other.publish(topic, b"from other", qos=1)
    message = talker.expect_message()
    assert message.payload == b"from other", "a No Local subscription received its own message"


def test_v5_mqtt_4_8_2_3_shared_subscription_splits_messages_between_members(broker, clients):
    topic = f"roost-it/{unique('shared')}/jobs"
    group = f"$share/{unique('group')}/{topic}"
    members = [clients(broker, version=V5), clients(broker, version=V5)]
    granted = [1, 0]
    for member, qos in zip(members, granted):
        member.connect()
        member.subscribe(group, qos)
    publisher = clients(broker, version=V5)
    publisher.connect()
    jobs = [f"job {i}".encode() for i in range(20)]
    for job in jobs:
        publisher.publish(topic, job, qos=1)

    got: list[list] = [[], []]
    deadline = time.monotonic() + TIMEOUT
    while sum(len(g) for g in got) < len(jobs) and time.monotonic() < deadline:
        for index, member in enumerate(members):
            try:
                got[index].append(member.messages.get(timeout=0.05))
            except queue.Empty:
                pass
    delivered = [m.payload for g in got for m in g]
    assert sorted(delivered) == sorted(jobs), "each message goes to exactly one member of the group"
    assert all(got), f"messages not split: {[len(g) for g in got]} per member"
    for messages, qos in zip(got, granted):
        assert all(m.qos == min(1, qos) for m in messages), "the member's granted QoS is respected"


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_single_and_multi_level_wildcards_match_levels(broker, clients, version):
    base = f"roost-it/{unique('wild')}"
    plus = clients(broker, version=version)
    hash_ = clients(broker, version=version)
    for client, topic_filter in ((plus, f"{base}/+/temp"), (hash_, f"{base}/#")):
        client.connect()
        client.subscribe(topic_filter, 1)
    publisher = clients(broker, version=version)
    publisher.connect()
    topics = [f"{base}/kitchen/temp", f"{base}/kitchen/oven/temp", f"{base}/temp", base, f"{base}/hall/temp"]
    for topic in topics:
        publisher.publish(topic, topic.encode(), qos=1)
    # "+" matches exactly one level; "#" also matches the parent level itself.
    assert [m.topic for m in plus.expect_messages(2)] == [f"{base}/kitchen/temp", f"{base}/hall/temp"]
    assert [m.topic for m in hash_.expect_messages(len(topics))] == topics
    publisher.publish(f"{base}/end/temp", b"sentinel", qos=1)
    assert plus.expect_message().topic == f"{base}/end/temp", "'+' matched more than one level"


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_mqtt_4_7_2_1_leading_wildcards_do_not_match_dollar_topics(fresh_broker, clients, version):
    uid = unique("dollar")
    dollar_topic = f"$roost-test/{uid}/x"
    plain_topic = f"plain/{uid}/x"
    wildcard = clients(fresh_broker, version=version)
    wildcard.connect()
    wildcard.subscribe("#", 1)
    wildcard.subscribe(f"+/{uid}/x", 1)
    explicit = clients(fresh_broker, version=version)
    explicit.connect()
    explicit.subscribe(dollar_topic, 1)

    publisher = clients(fresh_broker, version=version)
    publisher.connect()
    publisher.publish(dollar_topic, b"dollar", qos=1)
    assert explicit.expect_message().topic == dollar_topic, "a filter naming the $ topic receives it"
    publisher.publish(plain_topic, b"sentinel", qos=1)
    # "#" and "+/uid/x" both match the sentinel; no "$" message may precede it.
    first = wildcard.expect_message()
    assert first.topic == plain_topic, f"a leading wildcard matched {first.topic!r}"
