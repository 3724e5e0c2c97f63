"""Transports with third-party clients: mosquitto_pub/sub over TLS and mutual TLS,
paho-mqtt over WebSocket and WSS, and a certificate reload on SIGHUP.

Certificates are made at test time with the `openssl` command (nothing secret is
committed). Every broker gets its own config file and listens on port 0.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roost_interop import TIMEOUT, V5, V311, VERSION_IDS, VERSIONS, BrokerProcess, Client, unique

def require(tool: str) -> str:
    """The tool's path; a missing tool fails the test (scripts/install-test-deps.sh installs it)
    rather than skipping it, so a run without it cannot pass for one that checked."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian packages openssl, mosquitto-clients)")
    return path


def openssl(*args: str) -> None:
    subprocess.run([require("openssl"), *args], check=True, capture_output=True, timeout=60)


class Pki:
    """A CA with server and client certificates in a directory."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.ca = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(self.ca_key), "-out", str(self.ca), "-subj", "/CN=Roost Interop CA", "-days", "2",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def issue(self, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
        key, csr, cert, ext = (self.dir / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
        ext.write_text(extensions)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", subject)  # fmt: skip
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.ca_key),
                "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
        return cert, key

    def server(self, name: str = "server") -> tuple[Path, Path]:
        return self.issue(
            name,
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )

    def client(self, name: str, cn: str) -> tuple[Path, Path]:
        return self.issue(
            name,
            f"/C=DE/O=Acme/CN={cn}",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def start(tmp_path: Path, toml: str, expect: tuple[str, ...]) -> BrokerProcess:
    config = tmp_path / f"roost-{unique('cfg')}.toml"
    config.write_text(toml)
    return BrokerProcess("-c", str(config), expect=expect)


TCP = '[[listeners]]\nkind = "tcp"\nbind = "127.0.0.1:0"\n'


def tls_table(cert: Path, key: Path, extra: str = "") -> str:
    return f'[listeners.tls]\ncert_file = "{cert}"\nkey_file = "{key}"\nwatch_interval_secs = 0\n{extra}\n'


@pytest.fixture
def brokers():
    started: list[BrokerProcess] = []
    yield started
    for broker in started:
        broker.stop()


def mosquitto(tool: str, port: int, pki: Pki, *args: str, cert: tuple[Path, Path] | None = None):
    command = [require(tool), "-h", "localhost", "-p", str(port), "--cafile", str(pki.ca), *args]
    if cert is not None:
        command += ["--cert", str(cert[0]), "--key", str(cert[1])]
    return command


def pub_then_sub(pub_cmd: list[str], sub_cmd: list[str]) -> subprocess.CompletedProcess:
    """Publishes a retained message, then mosquitto_sub receives it (no race with the subscription)."""
    pub = subprocess.run([*pub_cmd, "-r"], capture_output=True, text=True, timeout=TIMEOUT)
    assert pub.returncode == 0, pub.stderr
    return subprocess.run(sub_cmd, capture_output=True, text=True, timeout=TIMEOUT + 5)


def test_mosquitto_clients_over_tls(pki, tmp_path, brokers):
    cert, key = pki.server()
    broker = start(tmp_path, '[[listeners]]\nkind = "tls"\nbind = "127.0.0.1:0"\n' + tls_table(cert, key) + TCP,
                   ("mqtts", "mqtt"))  # fmt: skip
    brokers.append(broker)
    port = broker.listeners["mqtts"][1]
    topic = f"tls/{unique('t')}"
    sub = mosquitto("mosquitto_sub", port, pki, "-t", topic, "-C", "1", "-W", str(int(TIMEOUT)))
    pub = mosquitto("mosquitto_pub", port, pki, "-t", topic, "-m", "over tls", "-q", "1")
    result = pub_then_sub(pub, sub)
    assert result.returncode == 0, result.stderr
    assert "over tls" in result.stdout


def test_mosquitto_clients_over_mutual_tls_with_identity_as_username(pki, tmp_path, brokers):
    cert, key = pki.server()
    extra = f'ca_file = "{pki.ca}"\nverify_peer = true\nuse_identity_as_username = true'
    toml = '[[listeners]]\nkind = "tls"\nbind = "127.0.0.1:0"\nallow_anonymous = false\n' + tls_table(cert, key, extra)
    broker = start(tmp_path, toml + TCP, ("mqtts", "mqtt"))
    brokers.append(broker)
    port = broker.listeners["mqtts"][1]
    device = pki.client("device", "py-device")
    topic = f"mtls/{unique('t')}"
    sub = mosquitto("mosquitto_sub", port, pki, "-t", topic, "-C", "1", "-W", str(int(TIMEOUT)), cert=device)
    pub = mosquitto("mosquitto_pub", port, pki, "-t", topic, "-m", "mutual", cert=device)
    result = pub_then_sub(pub, sub)
    assert result.returncode == 0, result.stderr
    assert "mutual" in result.stdout
    # Without a client certificate the handshake is refused.
    refused = subprocess.run(mosquitto("mosquitto_pub", port, pki, "-t", topic, "-m", "x"),
                             capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert refused.returncode != 0


def paho_client(version: int, transport: str, host: str, port: int, tls_ca: Path | None = None):
    """A connected paho client on the websockets transport; returns (client, message queue)."""
    import queue

    messages: queue.Queue = queue.Queue()
    connected = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=unique("py-ws"),
        protocol=mqtt.MQTTv5 if version == V5 else mqtt.MQTTv311,
        transport=transport,
    )
    client.ws_set_options(path="/mqtt")
    if tls_ca is not None:
        client.tls_set(ca_certs=str(tls_ca))
    client.on_connect = lambda *_args: connected.set()
    client.on_message = lambda _c, _u, message: messages.put(message)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    assert connected.wait(TIMEOUT), "no CONNACK over WebSocket"
    return client, messages


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_paho_over_websocket_exchanges_with_a_tcp_client(version, tmp_path, brokers):
    toml = '[[listeners]]\nkind = "ws"\nbind = "127.0.0.1:0"\n' + TCP
    broker = start(tmp_path, toml, ("ws", "mqtt"))
    brokers.append(broker)
    host, port = broker.listeners["ws"]
    client, messages = paho_client(version, "websockets", host, port)
    topic = f"ws/{unique('t')}"
    try:
        subscribed = threading.Event()
        client.on_subscribe = lambda *_args: subscribed.set()
        client.subscribe(topic, qos=1)
        assert subscribed.wait(TIMEOUT)
        tcp = Client(broker, version=V311)
        tcp.connect()
        tcp.publish(topic, b"to websocket", qos=1)
        message = messages.get(timeout=TIMEOUT)
        assert message.payload == b"to websocket"
        # And from the WebSocket client to the TCP one.
        tcp.subscribe(f"{topic}/back", qos=1)
        client.publish(f"{topic}/back", b"from websocket", qos=1).wait_for_publish(TIMEOUT)
        assert tcp.expect_message().payload == b"from websocket"
        tcp.disconnect()
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_paho_over_wss(version, pki, tmp_path, brokers):
    cert, key = pki.server()
    toml = '[[listeners]]\nkind = "wss"\nbind = "127.0.0.1:0"\n' + tls_table(cert, key) + TCP
    broker = start(tmp_path, toml, ("wss", "mqtt"))
    brokers.append(broker)
    _, port = broker.listeners["wss"]
    client, messages = paho_client(version, "websockets", "localhost", port, tls_ca=pki.ca)
    topic = f"wss/{unique('t')}"
    try:
        subscribed = threading.Event()
        client.on_subscribe = lambda *_args: subscribed.set()
        client.subscribe(topic, qos=0)
        assert subscribed.wait(TIMEOUT)
        client.publish(topic, b"sealed", qos=0)
        assert messages.get(timeout=TIMEOUT).payload == b"sealed"
    finally:
        client.loop_stop()
        client.disconnect()


def presented_certificate(port: int, ca: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def test_sighup_reloads_certificates_without_dropping_connections(pki, tmp_path, brokers):
    live = tmp_path / "live"
    live.mkdir()
    first, first_key = pki.server("first")
    cert, key = live / "server.crt", live / "server.key"
    shutil.copy(first, cert)
    shutil.copy(first_key, key)
    toml = '[[listeners]]\nkind = "tls"\nbind = "127.0.0.1:0"\n' + tls_table(cert, key) + TCP
    broker = start(tmp_path, toml, ("mqtts", "mqtt"))
    brokers.append(broker)
    port = broker.listeners["mqtts"][1]
    assert presented_certificate(port, pki.ca) == der(first)

    # A paho client over TLS stays connected across the reload.
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("py-tls"), protocol=mqtt.MQTTv5)
    old.tls_set(ca_certs=str(pki.ca))
    connected, got = threading.Event(), threading.Event()
    payloads: list[bytes] = []
    old.on_connect = lambda *_args: connected.set()
    old.on_message = lambda _c, _u, m: (payloads.append(m.payload), got.set())
    old.connect("localhost", port, keepalive=30)
    old.loop_start()
    try:
        assert connected.wait(TIMEOUT)
        topic = f"reload/{unique('t')}"
        subscribed = threading.Event()
        old.on_subscribe = lambda *_args: subscribed.set()
        old.subscribe(topic, qos=1)
        assert subscribed.wait(TIMEOUT)

        second, second_key = pki.server("second")
        shutil.copy(second, cert)
        shutil.copy(second_key, key)
        broker.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while presented_certificate(port, pki.ca) != der(second):
            assert time.monotonic() < deadline, f"no reload after SIGHUP; log:\n{broker.log()}"
            time.sleep(0.05)
        assert broker.wait_for_log("TLS certificates reloaded"), broker.log()

        tcp = Client(broker)
        tcp.connect()
        tcp.publish(topic, b"after reload", qos=1)
        assert got.wait(TIMEOUT), "the connection opened before the reload still receives"
        assert payloads == [b"after reload"]
        tcp.disconnect()
    finally:
        old.loop_stop()
        old.disconnect()
