"""Authentication and authorization with third-party clients and tools:
a password file written by the real `mosquitto_passwd`, ACL file rules
enforced for paho-mqtt, JWTs made with PyJWT, an HTTP auth service
(Python's http.server), banned clients, and mosquitto_pub/sub logging in.

Each test starts its own broker (`roost -c FILE -p 0`) with an in-memory
store, so tests are independent and parallel-safe."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import jwt
import paho.mqtt.client as mqtt
import pytest

from roost_interop import TIMEOUT, V5, V311, VERSION_IDS, VERSIONS, BrokerProcess, Client, unique

# CONNACK codes as paho 2.x reports them (3.1.1 return codes are mapped to
# the 5.0 reason codes: 4 -> 0x86, 5 -> 0x87).
SUCCESS = 0x00
BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
BANNED = 0x8A
MAXIMUM_CONNECT_TIME = 0xA0


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian packages mosquitto, mosquitto-clients)")
    return path


@pytest.fixture
def start(tmp_path):
    """`start(toml) -> BrokerProcess`: a broker with this config (memory store); stopped at teardown."""
    started: list[BrokerProcess] = []

    def make(toml: str) -> BrokerProcess:
        config = tmp_path / f"roost-{unique('auth')}.toml"
        config.write_text('[store]\nbackend = "memory"\n' + toml)
        broker = BrokerProcess("-c", str(config))
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


class AuthClient(Client):
    """A paho client that logs in and reports refusals instead of raising."""

    def __init__(self, broker, username=None, password=None, **kwargs):
        super().__init__(broker, **kwargs)
        if username is not None:
            self.paho.username_pw_set(username, password)
        self._acks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.disconnect_reason: int | None = None
        self.paho.on_publish = self._on_publish
        self.paho.on_disconnect = self._on_disconnect_reason

    def _on_publish(self, _client, _userdata, mid, reason_code, _properties):
        with self._acked:
            self._acks[mid] = int(reason_code.value)
            self._acked.notify_all()

    def _on_disconnect_reason(self, _client, _userdata, _flags, reason_code, _properties):
        self.disconnect_reason = int(reason_code.value)
        self.disconnected.set()

    def connack_code(self) -> int:
        """Connects and returns the CONNACK code, success or not."""
        try:
            self.connect()
        except AssertionError:
            if self.connack is None:
                raise
        assert self.connack is not None
        return self.connack.reason_code

    def puback_code(self, topic: str, qos: int = 1) -> int:
        """Publishes at QoS 1 and returns the PUBACK reason code."""
        info = self.paho.publish(topic, b"x", qos=qos)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + TIMEOUT
        with self._acked:
            while info.mid not in self._acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no PUBACK for {topic!r} within {TIMEOUT}s")
                self._acked.wait(remaining)
            return self._acks.pop(info.mid)

    def suback_code(self, topic: str, qos: int = 0) -> int:
        """Subscribes and returns the SUBACK code (granted QoS or a refusal)."""
        try:
            return self.subscribe(topic, qos)[0]
        except AssertionError as refused:
            if "refused" not in str(refused):
                raise
            return int(str(refused).rsplit("[", 1)[1].rstrip("]"))


@pytest.fixture
def login():
    """Factory `login(broker, user, password, **kwargs) -> AuthClient`; closed at teardown."""
    made: list[AuthClient] = []

    def make(broker, username=None, password=None, **kwargs) -> AuthClient:
        client = AuthClient(broker, username, password, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def mosquitto_passwd(path: Path, user: str, password: str) -> None:
    """Adds a user with the real mosquitto_passwd (-c creates the file)."""
    create = [] if path.exists() else ["-c"]
    subprocess.run(
        [require("mosquitto_passwd"), *create, "-b", str(path), user, password],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )


# ----------------------------------------------------------------- password file


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_password_file_written_by_mosquitto_passwd_is_accepted(start, login, tmp_path, version):
    passwords = tmp_path / "passwd"
    mosquitto_passwd(passwords, "alice", "wonder land")
    mosquitto_passwd(passwords, "bob", "builder")
    assert passwords.read_text().startswith("alice:$7$"), "mosquitto_passwd should write PBKDF2-SHA512 ($7$) lines"
    broker = start(f'[auth.password_file]\npath = "{passwords}"\n')
    assert login(broker, "alice", "wonder land", version=version).connack_code() == SUCCESS
    assert login(broker, "bob", "builder", version=version).connack_code() == SUCCESS
    assert login(broker, "alice", "wrong", version=version).connack_code() == BAD_USER_NAME_OR_PASSWORD
    assert login(broker, "mallory", "x", version=version).connack_code() == BAD_USER_NAME_OR_PASSWORD


def test_mosquitto_pub_and_sub_log_in_with_the_password_file(start, tmp_path):
    passwords = tmp_path / "passwd"
    mosquitto_passwd(passwords, "alice", "pw")
    broker = start(f'[auth.password_file]\npath = "{passwords}"\n')
    topic = f"mosq/{unique('t')}"
    common = ["-h", broker.host, "-p", str(broker.port), "-u", "alice", "-P", "pw", "-V", "mqttv5"]
    sub = subprocess.Popen(
        [require("mosquitto_sub"), *common, "-t", topic, "-C", "1", "-W", str(int(TIMEOUT)), "-d"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Publish until the subscriber (whose SUBACK we cannot see from here) has one.
    deadline = time.monotonic() + TIMEOUT
    try:
        while sub.poll() is None and time.monotonic() < deadline:
            subprocess.run([require("mosquitto_pub"), *common, "-t", topic, "-m", "hello", "-q", "1"],
                           check=True, timeout=TIMEOUT, capture_output=True)
            time.sleep(0.1)
        out, _ = sub.communicate(timeout=TIMEOUT)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert sub.returncode == 0, out
    assert "hello" in out
    wrong = subprocess.run(
        [require("mosquitto_pub"), "-h", broker.host, "-p", str(broker.port), "-u", "alice", "-P", "nope",
         "-V", "mqttv5", "-t", topic, "-m", "x"],
        timeout=TIMEOUT,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0
    assert "bad user name or password" in (wrong.stderr + wrong.stdout).lower()


# ----------------------------------------------------------------- ACL file


def test_acl_file_rules_are_enforced_for_paho(start, login, tmp_path):
    passwords = tmp_path / "passwd"
    mosquitto_passwd(passwords, "alice", "pw")
    mosquitto_passwd(passwords, "bob", "pw")
    device = unique("dev")
    acl = tmp_path / "acl"
    acl.write_text(
        "deny  user:alice      publish    alice/locked\n"
        "allow user:alice      all        alice/#\n"
        f"allow client:{device} publish   devices/{device}/state\n"
        "allow all             all        users/%u/#\n"
        "allow all             publish    up/%c\n"
        "allow ip:127.0.0.0/8  subscribe  lan/#\n"
        "allow ip:10.0.0.0/8   subscribe  corp/#\n"
    )
    broker = start(
        f'[auth.password_file]\npath = "{passwords}"\n'
        f'[auth.acl_file]\npath = "{acl}"\nno_match = "deny"\n'
        # The refusal of `#` below is whole-filter semantics.
        '[security]\nacl_wildcards = "whole_filter"\n'
    )
    alice = login(broker, "alice", "pw")
    assert alice.connack_code() == SUCCESS
    bob = login(broker, "bob", "pw", client_id=device)
    assert bob.connack_code() == SUCCESS

    # user: rules, first match wins (the deny above the allow).
    assert alice.puback_code("alice/lamp") < 0x80
    assert alice.puback_code("alice/locked") == NOT_AUTHORIZED
    assert bob.puback_code("alice/lamp") == NOT_AUTHORIZED
    assert alice.suback_code("alice/#") == 0
    assert bob.suback_code("alice/#") == NOT_AUTHORIZED
    # client: rule.
    assert bob.puback_code(f"devices/{device}/state") < 0x80
    assert alice.puback_code(f"devices/{device}/state") == NOT_AUTHORIZED
    # %u and %c.
    assert bob.puback_code("users/bob/inbox") < 0x80
    assert bob.puback_code("users/alice/inbox") == NOT_AUTHORIZED
    assert alice.puback_code(f"up/{alice.client_id}") < 0x80
    assert alice.puback_code(f"up/{device}") == NOT_AUTHORIZED
    # ip: rules (the clients come from 127.0.0.1).
    assert bob.suback_code("lan/#") == 0
    assert bob.suback_code("corp/#") == NOT_AUTHORIZED
    # A wildcard reaching a denied topic is refused.
    assert alice.suback_code("#") == NOT_AUTHORIZED

    # Allowed messages arrive, denied ones do not.
    alice.subscribe("alice/#", 1)
    assert bob.puback_code("alice/lamp") == NOT_AUTHORIZED
    assert alice.puback_code("alice/lamp") < 0x80
    message = alice.expect_message()
    assert message.topic == "alice/lamp"
    with pytest.raises(AssertionError):
        alice.expect_message(timeout=0.3)


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_wildcards_overlapping_a_deny_are_checked_per_message_for_mosquitto_clients(start, login, tmp_path, version):
    """The interoperability suite's setup: `test/nosubscribe` refused, `#` and `+/+` granted, and a
    message on `test/nosubscribe` never delivered through them (acl_wildcards = "per_message", the
    default)."""
    acl = tmp_path / "acl"
    acl.write_text("deny all subscribe test/nosubscribe\nallow all all #\n")
    broker = start(f'[auth.acl_file]\npath = "{acl}"\n')
    refused = NOT_AUTHORIZED if version == V5 else 0x80
    client = login(broker, version=version)
    assert client.connack_code() == SUCCESS
    assert client.suback_code("test/nosubscribe") == refused

    protocol = "mqttv5" if version == V5 else "mqttv311"
    common = ["-h", broker.host, "-p", str(broker.port), "-V", protocol]
    # stdbuf: mosquitto_sub block-buffers its debug lines when stdout is a pipe.
    sub = subprocess.Popen(
        [require("stdbuf"), "-oL", require("mosquitto_sub"), *common, "-i", unique("mosq-wild"),
         "-t", "#", "-t", "+/+", "-v", "-C", "1", "-W", str(int(TIMEOUT)), "-d"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert sub.stdout is not None
        for line in sub.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Subscribed"):
                break
        assert lines and lines[-1].endswith(": 0, 0"), "both filters granted:\n" + "\n".join(lines)
        # One after the other: the first is routed before the second is sent.
        for topic, payload in [("test/nosubscribe", "secret"), ("test/ok", "fine")]:
            subprocess.run([require("mosquitto_pub"), *common, "-t", topic, "-m", payload, "-q", "1"],
                           check=True, timeout=TIMEOUT, capture_output=True)
        out, _ = sub.communicate(timeout=TIMEOUT + 5)
    finally:
        if sub.poll() is None:
            sub.kill()
    out = "\n".join(lines) + "\n" + out
    assert sub.returncode == 0, out
    # -C 1: the first message it got, and the only one.
    assert "test/ok fine" in out, out
    assert "secret" not in out, out


# ----------------------------------------------------------------- JWT

SECRET = "interop-secret-0123456789abcdef0123"


def token(**claims) -> str:
    return jwt.encode({"sub": "jwt-user", **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_jwt_made_with_pyjwt_logs_in_and_bad_tokens_are_refused(start, login, version):
    broker = start(f'[auth.jwt]\nsecret = "{SECRET}"\nleeway_secs = 0\nusername_claim = "sub"\n')
    now = int(time.time())
    good = token(exp=now + 300)
    assert login(broker, "anyone", good, version=version).connack_code() == SUCCESS
    expired = token(exp=now - 60)
    assert login(broker, "anyone", expired, version=version).connack_code() == BAD_USER_NAME_OR_PASSWORD
    forged = jwt.encode({"sub": "jwt-user", "exp": now + 300}, "another-secret-0123456789abcdef", algorithm="HS256")
    assert login(broker, "anyone", forged, version=version).connack_code() == BAD_USER_NAME_OR_PASSWORD
    assert login(broker, "anyone", "not-a-jwt", version=version).connack_code() == BAD_USER_NAME_OR_PASSWORD


def test_jwt_acl_claims_limit_publish_and_subscribe(start, login):
    broker = start(f'[auth.jwt]\nsecret = "{SECRET}"\n')
    claims = {"exp": int(time.time()) + 300, "acl": {"pub": ["up/${clientid}"], "sub": ["down/#"]}}
    client = login(broker, "x", token(**claims))
    assert client.connack_code() == SUCCESS
    assert client.puback_code(f"up/{client.client_id}") < 0x80
    assert client.puback_code("up/someone-else") == NOT_AUTHORIZED
    assert client.suback_code("down/#") == 0
    assert client.suback_code("up/#") == NOT_AUTHORIZED


def test_an_expiring_jwt_ends_the_connection_with_0xa0(start, login):
    broker = start(f'[auth.jwt]\nsecret = "{SECRET}"\nleeway_secs = 0\n')
    client = login(broker, "x", token(exp=int(time.time()) + 2))
    assert client.connack_code() == SUCCESS
    assert client.disconnected.wait(TIMEOUT), "the broker did not close the connection when the token expired"
    assert client.disconnect_reason == MAXIMUM_CONNECT_TIME


# ----------------------------------------------------------------- HTTP service


class AuthService:
    """http.server answering EMQX-style: allow "web"/"pw", deny the rest."""

    def __init__(self):
        self.requests: list[dict] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                service.requests.append(body)
                allowed = body.get("username") == "web" and body.get("password") == "pw"
                reply = json.dumps({"result": "allow" if allowed else "deny"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/auth"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_service():
    service = AuthService()
    yield service
    service.stop()


def test_http_authentication_service_decides(start, login, auth_service):
    broker = start(f'[auth.http]\nurl = "{auth_service.url}"\ncache_ttl_secs = 0\n')
    assert login(broker, "web", "pw").connack_code() == SUCCESS
    assert login(broker, "web", "wrong").connack_code() == BAD_USER_NAME_OR_PASSWORD
    assert login(broker, "web", "pw", version=V311).connack_code() == SUCCESS
    asked = [(r.get("username"), r.get("password")) for r in auth_service.requests]
    assert asked == [("web", "pw"), ("web", "wrong"), ("web", "pw")]


def test_an_unreachable_http_authentication_service_fails_closed(start, login):
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]
    # Nothing listens on `port` any more.
    broker = start(f'[auth.http]\nurl = "http://127.0.0.1:{port}/auth"\ntimeout_ms = 2000\n')
    assert login(broker, "web", "pw").connack_code() == SERVER_UNAVAILABLE
    assert broker.wait_for_log("unavailable", "unreachable"), broker.log()


# ----------------------------------------------------------------- bans


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_banned_clients_get_connack_0x8a(start, login, version):
    bad = unique("bad")
    broker = start(f'[[auth.banned.entries]]\nwho = "client:{bad}"\n[[auth.banned.entries]]\nwho = "user:troll"\n')
    client = login(broker, client_id=bad, version=version)
    code = client.connack_code()
    if version == V5:
        assert code == BANNED
    else:
        # 3.1.1 has no "banned" return code: 5 Not authorized.
        assert code == NOT_AUTHORIZED
    assert login(broker, "troll", "x", version=V5).connack_code() == BANNED
    assert login(broker, version=version).connack_code() == SUCCESS


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_a_ban_list_alone_accepts_named_users_as_no_auth_config_does(start, login, version):
    # A ban list filters; it verifies no credentials. With it alone, a client
    # that sends a user name is accepted exactly as with no [auth.*] at all.
    plain = start("")
    banned_only = start('[[auth.banned.entries]]\nwho = "user:troll"\n')
    for broker in (plain, banned_only):
        assert login(broker, "alice", "any password", version=version).connack_code() == SUCCESS
        assert login(broker, "bob", version=version).connack_code() == SUCCESS
    assert login(banned_only, "troll", "x", version=V5).connack_code() == BANNED
    # mosquitto_pub with a user name publishes and exits 0 against both.
    for broker in (plain, banned_only):
        sent = subprocess.run(
            [require("mosquitto_pub"), "-h", broker.host, "-p", str(broker.port), "-u", "alice", "-P", "pw",
             "-V", "mqttv5" if version == V5 else "mqttv311", "-t", f"ban/{unique('t')}", "-m", "x", "-q", "1"],
            timeout=TIMEOUT,
            capture_output=True,
            text=True,
        )
        assert sent.returncode == 0, sent.stderr
