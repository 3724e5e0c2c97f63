"""Helpers for the paho-mqtt interop suite: a broker process on a free port and a
paho client wrapper whose every wait is bounded.

The broker is the `roost` binary (env ROOST_BIN, default target/debug/roost),
started as `roost -p 0`; its port is read from the `listening on mqtt://IP:PORT`
line it logs on stderr (other listeners: `mqtts://`, `ws://`, `wss://`, `quic://`,
collected in `BrokerProcess.listeners`).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

REPO_ROOT = Path(__file__).resolve().parents[2]
# Upper bound for any single wait on the broker (CONNACK, SUBACK, a message).
TIMEOUT = float(os.environ.get("ROOST_TEST_TIMEOUT", "10"))
STARTUP_TIMEOUT = 10.0
LISTENING = re.compile(r"listening on (mqtts|mqtt|wss|ws|quic)://(\[[^\]]+\]|[^\s:/]+):(\d+)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

V5 = 5
V311 = 4
VERSIONS = [V5, V311]
VERSION_IDS = ["v5", "v311"]


def roost_binary() -> Path:
    path = Path(os.environ.get("ROOST_BIN", REPO_ROOT / "target" / "debug" / "roost"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def unique(prefix: str) -> str:
    """A client id or topic segment no other test (or parallel run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class BrokerProcess:
    """A `roost -p 0` child process; stderr is kept for failure reports."""

    def __init__(self, *extra_args: str, expect: tuple[str, ...] = ("mqtt",),
                 startup_timeout: float = STARTUP_TIMEOUT):
        """`expect`: the listener schemes to wait for (e.g. ("mqtt", "wss") with `-c FILE`);
        `startup_timeout`: how long to wait for them (longer where the start itself waits,
        e.g. for the Redis prefix lease a killed broker left)."""
        binary = roost_binary()
        if not binary.exists():
            raise FileNotFoundError(f"roost binary not found at {binary}: run `cargo build -p roost` or set ROOST_BIN")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        # The server keeps state on disk (./roost-data by default): a private
        # store per process, so no run sees another's sessions or retained messages.
        self._data_dir = tempfile.TemporaryDirectory(prefix="roost-data-")
        env.setdefault("ROOST_STORE__DATA_DIR", self._data_dir.name)
        self.args = [str(binary), "-p", "0", *extra_args]
        self._lines: list[str] = []
        self._lock = threading.Lock()
        # Signalled for every new log line (see `wait_for_log`).
        self._new_line = threading.Condition(self._lock)
        self._ready = threading.Event()
        self.host = ""
        self.port = 0
        self.expect = set(expect)
        # scheme -> (host, port) of the first listener of that scheme.
        self.listeners: dict[str, tuple[str, int]] = {}
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._ready.wait(startup_timeout) or not self.expect <= self.listeners.keys():
            self.stop()
            raise RuntimeError(
                f"roost did not log 'listening on' {sorted(self.expect)} within {startup_timeout}s "
                f"(exit code {self.process.returncode}); stderr:\n{self.log()}"
            )

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
            with self._new_line:
                self._lines.append(line)
                self._new_line.notify_all()
            if not self._ready.is_set():
                match = LISTENING.search(line)
                if match:
                    scheme, host, port = match.group(1), match.group(2).strip("[]"), int(match.group(3))
                    self.listeners.setdefault(scheme, (host, port))
                    if scheme == "mqtt" and not self.port:
                        self.host, self.port = host, port
                    if self.expect <= self.listeners.keys():
                        self._ready.set()
        # The process closed stderr (exited): wake a waiting constructor.
        self._ready.set()

    def log(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def wait_for_log(self, *needles: str, timeout: float = 5.0) -> bool:
        """Waits until the log contains one of `needles`. The log is read by a
        thread of its own, so a line the broker wrote before answering a client
        may arrive here after the answer."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while not any(needle in line for line in self._lines for needle in needles):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._new_line.wait(left)
            return True

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(grace)
        self._reader.join(grace)


@dataclass
class ConnAck:
    session_present: bool
    reason_code: int
    properties: Properties | None


class Client:
    """A paho-mqtt 2.x client (callback API version 2) driven by its network thread;
    callbacks feed events and queues that tests wait on with a timeout."""

    def __init__(
        self,
        broker: BrokerProcess,
        version: int = V5,
        client_id: str | None = None,
        clean: bool = True,
        session_expiry: int | None = None,
    ):
        self.broker = broker
        self.version = version
        self.client_id = client_id or unique("py")
        self.clean = clean
        self.session_expiry = session_expiry
        kwargs = {} if version == V5 else {"clean_session": clean}
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if version == V5 else mqtt.MQTTv311,
            reconnect_on_failure=False,
            **kwargs,
        )
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: ConnAck | None = None
        self._connected = threading.Event()
        self.disconnected = threading.Event()
        self._subacks: dict[int, list] = {}
        self._subacked = threading.Condition()
        self.paho.on_connect = self._on_connect
        self.paho.on_message = self._on_message
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_disconnect = self._on_disconnect
        self._looping = False

    # ------------------------------------------------------------ callbacks
    def _on_connect(self, _client, _userdata, flags, reason_code, properties):
        self.connack = ConnAck(bool(flags.session_present), int(reason_code.value), properties)
        self._connected.set()

    def _on_message(self, _client, _userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties):
        with self._subacked:
            self._subacks[mid] = [int(rc.value) for rc in reason_codes]
            self._subacked.notify_all()

    def _on_disconnect(self, _client, _userdata, _flags, _reason_code, _properties):
        self.disconnected.set()

    # ------------------------------------------------------------ actions
    def will_set(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, properties=None) -> None:
        self.paho.will_set(topic, payload, qos=qos, retain=retain, properties=properties)

    def connect(self, timeout: float = TIMEOUT) -> ConnAck:
        """Connects and waits for a successful CONNACK."""
        if self.version == V5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry is not None:
                props.SessionExpiryInterval = self.session_expiry
            self.paho.connect(
                self.broker.host, self.broker.port, keepalive=30, clean_start=self.clean, properties=props
            )
        else:
            self.paho.connect(self.broker.host, self.broker.port, keepalive=30)
        self.paho.loop_start()
        self._looping = True
        if not self._connected.wait(timeout):
            raise AssertionError(f"{self.client_id}: no CONNACK within {timeout}s")
        assert self.connack is not None
        if self.connack.reason_code >= 0x80 or (self.version == V311 and self.connack.reason_code != 0):
            raise AssertionError(f"{self.client_id}: connection refused, reason code {self.connack.reason_code:#x}")
        return self.connack

    def subscribe(
        self,
        topic: str,
        qos: int = 0,
        *,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        subscription_id: int | None = None,
        timeout: float = TIMEOUT,
    ) -> list[int]:
        """Subscribes and waits for the SUBACK; returns its reason codes (granted QoS)."""
        if self.version == V5:
            options = SubscribeOptions(
                qos=qos, noLocal=no_local, retainAsPublished=retain_as_published, retainHandling=retain_handling
            )
            props = None
            if subscription_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = subscription_id
            result, mid = self.paho.subscribe(topic, options=options, properties=props)
        else:
            result, mid = self.paho.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {mqtt.error_string(result)}"
        deadline = time.monotonic() + timeout
        with self._subacked:
            while mid not in self._subacks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.client_id}: no SUBACK for {topic!r} within {timeout}s")
                self._subacked.wait(remaining)
            codes = self._subacks.pop(mid)
        assert all(code < 0x80 for code in codes), f"subscription to {topic!r} refused: {codes}"
        return codes

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        """Publishes and waits until the QoS flow completes (PUBACK, or PUBCOMP), or
        until a QoS 0 message is written to the socket."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {mqtt.error_string(info.rc)}"
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError(f"{self.client_id}: QoS {qos} publish to {topic!r} not completed within {timeout}s")

    def expect_message(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def expect_messages(self, count: int, timeout: float = TIMEOUT) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        received = []
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                topics = [m.topic for m in received]
                raise AssertionError(f"{self.client_id}: {len(received)} of {count} messages within {timeout}s: {topics}")
            try:
                received.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return received

    def disconnect(self, timeout: float = TIMEOUT) -> None:
        """A clean disconnect: DISCONNECT (reason 0x00), then the socket closes."""
        self.paho.disconnect()
        if not self.disconnected.wait(timeout):
            raise AssertionError(f"{self.client_id}: disconnect not completed within {timeout}s")
        self._stop_loop()

    def drop(self) -> None:
        """An abnormal disconnect: the TCP connection closes without a DISCONNECT packet."""
        self._stop_loop()
        sock = self.paho.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        """Best-effort cleanup at the end of a test."""
        if self._looping and not self.disconnected.is_set():
            try:
                self.paho.disconnect()
            except Exception:  # noqa: BLE001 - cleanup must not mask the test's own failure
                pass
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._looping:
            self._looping = False
            self.paho.loop_stop()


def publish_properties(**values) -> Properties:
    """PUBLISH properties from paho attribute names, e.g. ResponseTopic="a/b"."""
    props = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def will_properties(**values) -> Properties:
    props = Properties(PacketTypes.WILLMESSAGE)
    for name, value in values.items():
        setattr(props, name, value)
    return props
