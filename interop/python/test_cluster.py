"""Cluster mode (docs/cluster.md) with paho-mqtt: two `roost --cluster-redis`
nodes on a private redis-server, publisher on one, subscriber on the other.

Routes reach the other node asynchronously (the route log, milliseconds):
each test first publishes probes until the remote subscriber gets one
(bounded), never sleeps and hopes."""

from __future__ import annotations

import queue
import time

import pytest

from roost_interop import TIMEOUT, BrokerProcess, Client, unique

ROUTE_WAIT = 10.0


@pytest.fixture
def nodes(redis_url):
    run = unique("n")
    started = [
        BrokerProcess("--store", "memory", "--cluster-redis", redis_url, "--node-id", f"{run}-{name}")
        for name in ("a", "b")
    ]
    yield started
    for node in started:
        node.stop()


def wait_for_route(publisher: Client, topic: str, subscriber: Client) -> None:
    """Probes until the subscriber got one, then drains the probes."""
    deadline = time.monotonic() + ROUTE_WAIT
    while True:
        assert time.monotonic() < deadline, f"route to {topic} not seen in {ROUTE_WAIT}s"
        publisher.publish(topic, b"probe")
        try:
            subscriber.messages.get(timeout=0.1)
            break
        except queue.Empty:
            continue
    while True:
        try:
            subscriber.messages.get(timeout=0.3)
        except queue.Empty:
            return


def test_cluster_paho_publisher_on_a_reaches_wildcard_subscriber_on_b_at_qos_1_and_2(nodes, clients):
    a, b = nodes
    base = unique("pc")
    sub = clients(b)
    sub.connect()
    sub.subscribe(f"{base}/+/x", qos=2, subscription_id=9)
    pub = clients(a)
    pub.connect()
    wait_for_route(pub, f"{base}/probe/x", sub)
    pub.publish(f"{base}/1/x", b"one", qos=1)
    pub.publish(f"{base}/2/x", b"two", qos=2)
    got = sub.expect_messages(2)
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"{base}/1/x", b"one", 1),
        (f"{base}/2/x", b"two", 2),
    ]
    assert all(m.properties.SubscriptionIdentifier == [9] for m in got)


def test_cluster_paho_same_client_id_on_b_disconnects_the_one_on_a_with_0x8e(nodes, clients):
    a, b = nodes
    client_id = unique("same")
    first = clients(a, client_id=client_id)
    reasons: list[int] = []
    inner = first.paho.on_disconnect

    def on_disconnect(client, userdata, flags, reason_code, properties):
        reasons.append(int(reason_code.value))
        inner(client, userdata, flags, reason_code, properties)

    first.paho.on_disconnect = on_disconnect
    first.connect()
    second = clients(b, client_id=client_id)
    assert second.connect().reason_code == 0
    assert first.disconnected.wait(TIMEOUT), "the connection on A was not closed"
    assert reasons == [0x8E]
