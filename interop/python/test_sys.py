"""The `$SYS` topics (docs/management.md, "$SYS topics"), as Mosquitto users'
tools read them: mosquitto_sub on `$SYS/#` sees values that match the traffic
mosquitto_pub sent; `$SYS` stays read-only for clients and an ACL deny rule
hides it; the EMQX-style client events arrive (paho) when turned on and not
when off."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from roost_interop import TIMEOUT, V5, V311, BrokerProcess, Client, unique

# Waits for a `$SYS` value span several intervals (1 s here).
SYS_WAIT = TIMEOUT + 10


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian package mosquitto-clients)")
    return path


def start(tmp_path: Path, config: str) -> BrokerProcess:
    path = tmp_path / f"roost-{unique('sys')}.toml"
    path.write_text('[store]\nbackend = "memory"\n' + config)
    return BrokerProcess("-c", str(path))


class SysWatcher:
    """`mosquitto_sub -t '$SYS/#'` printing `topic<TAB>payload` lines; the latest
    value of each topic is kept, and waits are bounded."""

    def __init__(self, broker: BrokerProcess, topic: str = "$SYS/#"):
        self.process = subprocess.Popen(
            [require("stdbuf"), "-oL", require("mosquitto_sub"), "-h", broker.host, "-p", str(broker.port),
             "-i", unique("sys-watch"), "-t", topic, "-F", "%t\t%p"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.latest: dict[str, str] = {}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            with self._changed:
                self.lines.append(line)
                if "\t" in line:
                    topic, payload = line.split("\t", 1)
                    self.latest[topic] = payload
                self._changed.notify_all()

    def wait_for(self, topic: str, accept, timeout: float = SYS_WAIT) -> str:
        """Waits until `topic`'s latest value satisfies `accept`; returns it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = self.latest.get(topic)
                if value is not None and accept(value):
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{topic}: last value {value!r} never accepted within {timeout}s; "
                                         f"last lines: {self.lines[-20:]}")
                self._changed.wait(left)

    def stop(self):
        self.process.kill()
        self.process.wait(TIMEOUT)


def at_least(n: int):
    return lambda value: int(value) >= n


def equals(n: int):
    return lambda value: int(value) == n


@pytest.fixture
def sys_broker(tmp_path):
    broker = start(tmp_path, "[sys]\ninterval = 1\n")
    yield broker
    broker.stop()


def test_sys_topics_arrive_at_mosquitto_sub_with_the_traffic_sent(sys_broker, clients):
    messages, size = 7, 100
    topic = unique("sys/traffic")
    reader = clients(sys_broker, version=V311)
    reader.connect()
    reader.subscribe(topic, qos=1)
    watcher = SysWatcher(sys_broker)
    try:
        assert watcher.wait_for("$SYS/broker/version", lambda v: True).startswith("roost version ")
        assert re.fullmatch(r"\d+ seconds", watcher.wait_for("$SYS/broker/uptime", lambda v: True))
        # The reader and the watcher; the watcher's `$SYS/#` and the reader's filter.
        watcher.wait_for("$SYS/broker/clients/connected", equals(2))
        watcher.wait_for("$SYS/broker/subscriptions/count", equals(2))
        for i in range(messages):
            subprocess.run(
                [require("mosquitto_pub"), "-h", sys_broker.host, "-p", str(sys_broker.port), "-q", "1",
                 "-i", unique("sys-pub"), "-t", topic, "-m", f"{i:0{size}d}"],
                check=True, timeout=TIMEOUT, capture_output=True,
            )
        reader.expect_messages(messages)
        subprocess.run(
            [require("mosquitto_pub"), "-h", sys_broker.host, "-p", str(sys_broker.port), "-q", "1", "-r",
             "-i", unique("sys-pub"), "-t", unique("sys/retained"), "-m", "kept"],
            check=True, timeout=TIMEOUT, capture_output=True,
        )
        # 7 to the reader plus the retained one (no subscriber).
        watcher.wait_for("$SYS/broker/messages/received", equals(messages + 1))
        watcher.wait_for("$SYS/broker/publish/messages/received", equals(messages + 1))
        # What the reader got; the watcher's own `$SYS` deliveries count too, as in Mosquitto.
        watcher.wait_for("$SYS/broker/messages/sent", at_least(messages))
        watcher.wait_for("$SYS/broker/bytes/received", at_least(messages * size))
        watcher.wait_for("$SYS/broker/bytes/sent", at_least(messages * size))
        # The one retained message sent: the `$SYS` values are kept apart.
        watcher.wait_for("$SYS/broker/retained messages/count", equals(1))
        watcher.wait_for("$SYS/broker/messages/stored", equals(1))
        # 8 publishers came and went: back to the reader and the watcher.
        watcher.wait_for("$SYS/broker/clients/connected", equals(2))
        watcher.wait_for("$SYS/broker/clients/maximum", at_least(3))
        watcher.wait_for("$SYS/broker/clients/total", equals(2))
        watcher.wait_for("$SYS/broker/publish/messages/dropped", equals(0))
        watcher.wait_for("$SYS/broker/load/messages/received/1min", lambda v: float(v) > 0)
        watcher.wait_for("$SYS/broker/load/connections/1min", lambda v: float(v) > 0)
        assert re.fullmatch(r"\d+\.\d\d", watcher.latest["$SYS/broker/load/bytes/sent/15min"])
        assert int(watcher.wait_for("$SYS/broker/heap/current", lambda v: True)) > 0
    finally:
        watcher.stop()


@pytest.mark.parametrize("version", [V5, V311], ids=["v5", "v311"])
def test_sys_stays_read_only_for_clients(sys_broker, clients, version):
    """A client's PUBLISH to a `$SYS` topic the broker publishes is refused:
    the retained value stays the broker's."""
    intruder = clients(sys_broker, version=version)
    intruder.connect()
    try:
        intruder.publish("$SYS/broker/version", b"hacked", qos=1, retain=True)
    except AssertionError:
        pass  # 3.1.1: the broker may close the connection instead of acknowledging
    reader = clients(sys_broker, version=version)
    reader.connect()
    reader.subscribe("$SYS/broker/version", qos=1)
    assert reader.expect_message().payload.decode().startswith("roost version ")


def test_an_acl_deny_rule_hides_sys(tmp_path, clients):
    hidden = unique("hidden")
    acl = tmp_path / "acl"
    acl.write_text(f"deny client:{hidden} subscribe $SYS/#\nallow all subscribe $SYS/#\nallow all all #\n")
    broker = start(tmp_path, f'[sys]\ninterval = 1\n[auth.acl_file]\npath = "{acl}"\n')
    try:
        denied = clients(broker, client_id=hidden)
        denied.connect()
        with pytest.raises(AssertionError, match="refused"):
            denied.subscribe("$SYS/#", qos=1)
        with pytest.raises(AssertionError, match="refused"):
            denied.subscribe("$SYS/broker/uptime", qos=1)
        allowed = clients(broker)
        allowed.connect()
        allowed.subscribe("$SYS/broker/version", qos=1)
        assert allowed.expect_message().payload.decode().startswith("roost version ")
    finally:
        broker.stop()


def test_sys_interval_zero_publishes_nothing(tmp_path, clients):
    broker = start(tmp_path, "[sys]\ninterval = 0\n")
    try:
        reader = clients(broker)
        reader.connect()
        reader.subscribe("$SYS/#", qos=1)
        marker = unique("marker")
        reader.subscribe(marker, qos=1)
        reader.publish(marker, b"end", qos=1)
        # Retained `$SYS` values would have arrived with the SUBACK, before the marker.
        assert reader.expect_message().topic == marker
    finally:
        broker.stop()


def event_payloads(watcher: Client, count: int) -> list[tuple[str, dict]]:
    return [(m.topic, json.loads(m.payload)) for m in watcher.expect_messages(count)]


def test_client_events_arrive_as_json_when_on(tmp_path, clients):
    broker = start(tmp_path, "[sys]\ninterval = 0\nclient_events = true\n")
    try:
        watcher = clients(broker)
        watcher.connect()
        watcher.subscribe("$SYS/brokers/+/clients/#", qos=1)
        client_id = unique("evented")
        client = clients(broker, client_id=client_id)
        client.connect()
        client.disconnect()
        events = event_payloads(watcher, 2)
        (topic, connected), (topic2, disconnected) = events
        assert re.fullmatch(rf"\$SYS/brokers/[^/]+/clients/{client_id}/connected", topic), topic
        assert topic2 == topic.replace("/connected", "/disconnected")
        assert connected["clientid"] == client_id
        assert connected["proto_ver"] == 5
        assert connected["keepalive"] == 30
        assert connected["ipaddress"] == "127.0.0.1"
        assert connected["username"] is None
        assert connected["clean_start"] is True
        assert isinstance(connected["connected_at"], int) and connected["connected_at"] > 0
        assert disconnected["clientid"] == client_id
        assert disconnected["reason"] == "normal"
        assert disconnected["disconnected_at"] >= connected["connected_at"]
        # Not retained: a later subscriber gets nothing before its marker.
        late = clients(broker)
        late.connect()
        late.subscribe("$SYS/brokers/+/clients/#", qos=1)
        marker = unique("marker")
        late.subscribe(marker, qos=1)
        late.publish(marker, b"end", qos=1)
        assert late.expect_message().topic == marker
    finally:
        broker.stop()


def test_client_events_are_off_by_default(tmp_path, clients):
    broker = start(tmp_path, "[sys]\ninterval = 0\n")
    try:
        watcher = clients(broker)
        watcher.connect()
        watcher.subscribe("$SYS/brokers/#", qos=1)
        marker = unique("marker")
        watcher.subscribe(marker, qos=1)
        # The connected event would be routed before this client's CONNACK is written.
        other = clients(broker)
        other.connect()
        watcher.publish(marker, b"end", qos=1)
        assert watcher.expect_message().topic == marker
    finally:
        broker.stop()
