"""The authorization gate, as an outsider checks it: third-party clients only
(mosquitto_pub / mosquitto_sub, paho-mqtt), the documented configuration, and
restarts of the real store (docs/auth.md, "One gate for every message and
every session").

1. A will must pass the same publish authorization as a PUBLISH by its client:
   a will on a topic the client may not publish to refuses the CONNECT.
2. A session restored from the store keeps its owner: after a restart (SIGTERM
   or SIGKILL, disk or Redis store) another user cannot take the client id and
   read what was queued for the owner, and the owner still can.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from roost_interop import REPO_ROOT, STARTUP_TIMEOUT, TIMEOUT, V5, V311, BrokerProcess, Client, unique

ACL = """\
allow all all users/%u/#
deny all all users/#
allow user:bob subscribe $SYS/#
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian packages mosquitto, mosquitto-clients, redis-server)")
    return path


def write_auth_files(directory: Path) -> tuple[Path, Path]:
    """A password file made by the real mosquitto_passwd, and the ACL file above."""
    passwords = directory / "passwd"
    for i, (user, password) in enumerate([("alice", "alice-pw"), ("bob", "bob-pw")]):
        create = ["-c"] if i == 0 else []
        subprocess.run([require("mosquitto_passwd"), *create, "-b", str(passwords), user, password],
                       check=True, timeout=TIMEOUT, capture_output=True)
    acl = directory / "acl"
    acl.write_text(ACL)
    return passwords, acl


def auth_config(directory: Path, store: str) -> Path:
    passwords, acl = write_auth_files(directory)
    config = directory / f"roost-{unique('gate')}.toml"
    config.write_text(
        f"{store}\n"
        f'[auth.password_file]\npath = "{passwords}"\n'
        f'[auth.acl_file]\npath = "{acl}"\n'
    )
    return config


class User(Client):
    """A paho client logged in as `username`."""

    def __init__(self, broker, username: str, password: str, **kwargs):
        super().__init__(broker, **kwargs)
        self.paho.username_pw_set(username, password)


def mosquitto(tool: str, broker: BrokerProcess, version: str, user: str, password: str, *args: str) -> list[str]:
    return [require(tool), "-h", broker.host, "-p", str(broker.port), "-V", version,
            "-u", user, "-P", password, *args]


def collect_until(client: Client, sentinel: str) -> list[mqtt.MQTTMessage]:
    """Every message `client` receives up to and including `sentinel`'s topic."""
    seen = []
    while True:
        message = client.expect_message()
        seen.append(message)
        if message.topic == sentinel:
            return seen


# ------------------------------------------------------------------- wills


@pytest.fixture
def memory_broker(tmp_path):
    broker = BrokerProcess("-c", str(auth_config(tmp_path, '[store]\nbackend = "memory"')))
    yield broker
    broker.stop()


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("will_topic", ["users/bob/inbox", "$SYS/broker/fake"])
def test_a_will_its_client_may_not_publish_refuses_the_connect(memory_broker, version, will_topic):
    """The issue's reproduction: bob watches his inbox and $SYS; alice connects
    with a will on bob's inbox (or $SYS) and is killed with SIGKILL. The CONNECT
    is refused (not authorised), so there is no will to publish."""
    bob = User(memory_broker, "bob", "bob-pw")
    bob.connect()
    bob.subscribe("users/bob/#", 1)
    bob.subscribe("$SYS/#", 1)
    alice = subprocess.Popen(
        mosquitto("mosquitto_sub", memory_broker, version, "alice", "alice-pw",
                  "-i", unique("alice"), "-t", "users/alice/x",
                  "--will-topic", will_topic, "--will-payload", "forged"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        out, _ = alice.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # Connected after all: kill it as the reproduction does, and fail below.
        alice.kill()
        out, _ = alice.communicate(timeout=TIMEOUT)
    assert alice.returncode not in (0, -9), f"alice's CONNECT was accepted: {out}"
    assert "not author" in out.lower(), out
    # Anything published because of alice reached bob before this sentinel.
    sentinel = f"users/bob/{unique('sentinel')}"
    bob.publish(sentinel, b"end", qos=1)
    payloads = [m.payload for m in collect_until(bob, sentinel)]
    assert b"forged" not in payloads
    assert memory_broker.wait_for_log("will topic not authorized")


@pytest.mark.parametrize("version", [V311, V5], ids=["v311", "v5"])
def test_a_will_its_client_may_publish_is_delivered_when_its_connection_dies(memory_broker, version):
    """The allowed half of the pair (paho-mqtt): the gate lets a will through
    when a PUBLISH by its client to the same topic would be allowed."""
    watcher = User(memory_broker, "alice", "alice-pw")
    watcher.connect()
    topic = f"users/alice/{unique('status')}"
    watcher.subscribe(topic, 1)
    alice = User(memory_broker, "alice", "alice-pw", version=version)
    alice.will_set(topic, b"gone", qos=1)
    alice.connect()
    alice.drop()
    message = watcher.expect_message()
    assert (message.topic, message.payload) == (topic, b"gone")


# ---------------------------------------------------------- session owners


def store_section(kind: str, tmp_path: Path, redis_url: str | None) -> str:
    if kind == "disk":
        # The data directory is given with --data-dir (the harness points
        # ROOST_STORE__DATA_DIR at a fresh directory per process).
        return '[store]\nbackend = "disk"\ndurability = "sync"'
    return (f'[store]\nbackend = "redis"\ndurability = "sync"\n'
            f'[store.redis]\nurl = "{redis_url}"\nkey_prefix = "{unique("owner")}:"')


@pytest.mark.parametrize(
    "store,stop",
    [("disk", "sigterm"), ("disk", "sigkill"), ("redis", "sigterm"), ("redis", "sigkill")],
)
def test_a_restored_session_is_resumed_only_by_its_owner(tmp_path, request, store, stop):
    """The issue's reproduction: alice leaves a persistent session with a QoS 1
    subscription, a message is queued for it, the broker restarts on the same
    store. bob, claiming alice's client id, is refused and reads nothing; alice
    then resumes her session and gets the message."""
    url = request.getfixturevalue("redis_url") if store == "redis" else None
    config = auth_config(tmp_path, store_section(store, tmp_path, url))
    start = ["-c", str(config), "--data-dir", str(tmp_path / "data")]
    client_id = unique("Y")
    session = ["-i", client_id, "-c", "-x", "3600", "-q", "1"]
    broker = BrokerProcess(*start)
    try:
        subprocess.run(
            mosquitto("mosquitto_sub", broker, "mqttv5", "alice", "alice-pw", *session,
                      "-t", "users/alice/r", "-E"),
            check=True, timeout=TIMEOUT, capture_output=True,
        )
        subprocess.run(
            mosquitto("mosquitto_pub", broker, "mqttv5", "alice", "alice-pw",
                      "-q", "1", "-t", "users/alice/r", "-m", "secret"),
            check=True, timeout=TIMEOUT, capture_output=True,
        )
        # Before the restart bob is refused (the live registry knows alice).
        before = subprocess.run(
            mosquitto("mosquitto_sub", broker, "mqttv5", "bob", "bob-pw", *session, "-t", "users/bob/x", "-v",
                      "-W", str(int(TIMEOUT))),
            timeout=TIMEOUT + 5, capture_output=True, text=True,
        )
        assert before.returncode != 0 and "not author" in (before.stdout + before.stderr).lower()
    finally:
        if stop == "sigterm":
            broker.stop()
        else:
            broker.process.kill()
            broker.process.wait(TIMEOUT)
            broker.stop()
    # After SIGKILL the Redis prefix's lease (10 s) is still held by the dead
    # broker: the new one waits for it to expire before it starts.
    broker = BrokerProcess(*start, startup_timeout=STARTUP_TIMEOUT + 15)
    try:
        bob = subprocess.run(
            mosquitto("mosquitto_sub", broker, "mqttv5", "bob", "bob-pw", *session, "-t", "users/bob/x", "-v",
                      "-W", str(int(TIMEOUT))),
            timeout=TIMEOUT + 5, capture_output=True, text=True,
        )
        assert "secret" not in bob.stdout, "bob read alice's queued message"
        assert bob.returncode != 0 and "not author" in (bob.stdout + bob.stderr).lower(), bob
        alice = subprocess.run(
            mosquitto("mosquitto_sub", broker, "mqttv5", "alice", "alice-pw", *session, "-t", "users/alice/r",
                      "-v", "-C", "1", "-W", str(int(TIMEOUT))),
            timeout=TIMEOUT + 5, capture_output=True, text=True,
        )
        assert alice.returncode == 0, alice
        assert alice.stdout.strip() == "users/alice/r secret"
    finally:
        broker.stop()


def test_a_format_1_store_resumes_no_session(tmp_path):
    """Stores written before owners were recorded: the migration marks their
    sessions' owner unknown, and a CONNECT for such a client id starts clean
    (Session Present 0) instead of handing the old session to whoever asks."""
    data = tmp_path / "data"
    shutil.copytree(REPO_ROOT / "crates/roost-store/tests/golden/v1", data)
    broker = BrokerProcess("--data-dir", str(data))
    try:
        assert broker.wait_for_log("store migrated")
        # "client-2" is a persistent session that never expires in the golden store.
        client = Client(broker, version=V5, client_id="client-2", clean=False, session_expiry=3600)
        try:
            assert client.connect().session_present is False
        finally:
            client.close()
        assert broker.wait_for_log("no recorded owner")
    finally:
        broker.stop()
