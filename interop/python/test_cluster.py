"""Cluster mode (docs/cluster.md) with paho-mqtt: two `roost --cluster-redis`
nodes on a private redis-server, publisher on one, subscriber on the other.

Routes reach the other node asynchronously (the route log, milliseconds):
each test first publishes probes until the remote subscriber gets one
(bounded), never sleeps and hopes."""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
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


def drain(client: Client) -> None:
    """Drops what `client` received so far (probes), waiting 0.3 s for more."""
    while True:
        try:
            client.messages.get(timeout=0.3)
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


# --- Three nodes: the cross-node checks with paho and mosquitto ---


@pytest.fixture
def three(redis_url):
    run = unique("n3")
    started = [
        BrokerProcess("--store", "memory", "--cluster-redis", redis_url, "--node-id", f"{run}-{name}")
        for name in ("a", "b", "c")
    ]
    yield started
    for node in started:
        node.stop()


def test_cluster_paho_qos_0_to_a_hash_subscriber_on_another_node(three, clients):
    a, _b, c = three
    base = unique("h")
    sub = clients(c)
    sub.connect()
    sub.subscribe(f"{base}/#", qos=2)
    pub = clients(a)
    pub.connect()
    wait_for_route(pub, f"{base}/probe", sub)
    pub.publish(f"{base}/x/y", b"zero", qos=0)
    got = sub.expect_message()
    assert (got.topic, got.payload, got.qos) == (f"{base}/x/y", b"zero", 0)


def test_v5_cluster_paho_no_local_and_retain_as_published_for_the_remote_subscriber(three, clients):
    a, b, _c = three
    base = unique("nl")
    topic = f"{base}/t"
    # On B: one subscriber keeps the retain flag, one does not.
    keep = clients(b)
    keep.connect()
    keep.subscribe(topic, qos=1, retain_as_published=True, no_local=True)
    plain = clients(b)
    plain.connect()
    plain.subscribe(topic, qos=1)
    # The publisher on A subscribed with No Local itself: it does not get
    # its own message back, the remote No Local subscribers (other client
    # ids) do.
    pub = clients(a)
    pub.connect()
    pub.subscribe(topic, qos=1, no_local=True)
    wait_for_route(pub, topic, keep)
    wait_for_route(pub, topic, plain)
    drain(keep)
    pub.publish(topic, b"r", qos=1, retain=True)
    got_keep, got_plain = keep.expect_message(), plain.expect_message()
    assert (got_keep.payload, got_keep.retain) == (b"r", True)
    assert (got_plain.payload, got_plain.retain) == (b"r", False)
    with pytest.raises(queue.Empty):
        pub.messages.get(timeout=0.5)


def test_v5_cluster_paho_session_resumes_on_another_node_with_messages_queued_offline(three, clients):
    a, b, c = three
    base = unique("rs")
    topic = f"{base}/q"
    client_id = unique("resume")
    first = clients(a, client_id=client_id, clean=False, session_expiry=300)
    first.connect()
    first.subscribe(topic, qos=1)
    pub = clients(b)
    pub.connect()
    wait_for_route(pub, topic, first)
    first.disconnect()
    for i in range(3):
        pub.publish(topic, f"m{i}".encode(), qos=1)
    again = clients(c, client_id=client_id, clean=False, session_expiry=300)
    assert again.connect().session_present
    got = again.expect_messages(3)
    assert [m.payload for m in got] == [b"m0", b"m1", b"m2"]


def test_cluster_paho_shared_group_across_nodes_gets_n_messages_exactly_n_times(three, clients):
    a, b, c = three
    base = unique("sg")
    topic = f"{base}/t"
    members = []
    for node in (a, b, c):
        member = clients(node)
        member.connect()
        member.subscribe(f"$share/g/{topic}", qos=1)
        members.append(member)
    pubs = []
    for node in (a, b):
        pub = clients(node)
        pub.connect()
        pubs.append(pub)
    # Round robin over the nodes: probes until every member got one (each
    # publisher's node knows every node's group route).
    deadline = time.monotonic() + ROUTE_WAIT
    for pub in pubs:
        seen = [False] * len(members)
        while not all(seen):
            assert time.monotonic() < deadline, f"group routes not seen: {seen}"
            pub.publish(topic, b"probe")
            for i, member in enumerate(members):
                try:
                    while True:
                        member.messages.get(timeout=0.05)
                        seen[i] = True
                except queue.Empty:
                    pass
    for member in members:
        drain(member)
    n = 30
    sent = [f"m{i}".encode() for i in range(n)]
    for i, payload in enumerate(sent):
        pubs[i % 2].publish(topic, payload, qos=1)
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while len(got) < n and time.monotonic() < deadline:
        for member in members:
            try:
                got.append(member.messages.get(timeout=0.05).payload)
            except queue.Empty:
                pass
    # A little longer for a duplicate to show.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        for member in members:
            try:
                got.append(member.messages.get(timeout=0.05).payload)
            except queue.Empty:
                pass
    assert sorted(got) == sorted(sent), f"{len(got)} deliveries for {n} messages"


def test_cluster_mosquitto_pub_on_a_reaches_mosquitto_sub_on_b_at_qos_2(three):
    a, b, _c = three
    base = unique("mq")
    sub = subprocess.Popen(
        [shutil.which("stdbuf") or "stdbuf", "-oL", shutil.which("mosquitto_sub") or "mosquitto_sub",
         "-h", b.host, "-p", str(b.port), "-V", "mqttv5", "-q", "2", "-t", f"{base}/+", "-v",
         "-i", unique("mosq-sub"), "-W", str(int(ROUTE_WAIT + TIMEOUT))],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read():
        assert sub.stdout is not None
        for line in sub.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def pub(topic: str, message: str, qos: int) -> None:
        subprocess.run(
            [shutil.which("mosquitto_pub") or "mosquitto_pub", "-h", a.host, "-p", str(a.port),
             "-V", "mqttv5", "-q", str(qos), "-t", topic, "-m", message],
            check=True, timeout=TIMEOUT,
        )

    try:
        # Probes until the route to B is known on A (mosquitto_sub's own
        # SUBACK came before: it prints nothing until then).
        deadline = time.monotonic() + ROUTE_WAIT
        while True:
            assert time.monotonic() < deadline, "route to mosquitto_sub on B not seen"
            pub(f"{base}/probe", "probe", 0)
            try:
                lines.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        while True:
            try:
                lines.get(timeout=0.3)
            except queue.Empty:
                break
        pub(f"{base}/x", "exactly once", 2)
        assert lines.get(timeout=TIMEOUT) == f"{base}/x exactly once"
    finally:
        sub.kill()
        sub.wait(TIMEOUT)
