"""Interop with the mosquitto_pub / mosquitto_sub command-line clients."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from roost_interop import TIMEOUT, unique

PROTOCOLS = ["mqttv5", "mqttv311"]
MESSAGES = 5


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian package mosquitto-clients)")
    return path


class Subscriber:
    """mosquitto_sub in debug mode (-d), so its SUBACK is visible before anything is published."""

    def __init__(self, broker, protocol, qos, topic, count):
        # stdbuf: mosquitto_sub block-buffers its debug lines when stdout is a pipe.
        self.process = subprocess.Popen(
            [
                require("stdbuf"), "-oL",
                require("mosquitto_sub"),
                "-h", broker.host, "-p", str(broker.port),
                "-V", protocol, "-q", str(qos), "-t", topic,
                "-i", unique("mosq-sub"),
                "-C", str(count), "-W", str(int(TIMEOUT) + 5),
                "-d",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "received SUBACK" in line:
                self.subscribed.set()

    def wait_subscribed(self):
        if not self.subscribed.wait(TIMEOUT):
            self.process.kill()
            raise AssertionError("mosquitto_sub got no SUBACK:\n" + "\n".join(self.lines))

    def finish(self) -> int:
        try:
            code = self.process.wait(TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("mosquitto_sub did not exit:\n" + "\n".join(self.lines)) from None
        self._reader.join(TIMEOUT)
        return code


@pytest.mark.parametrize("qos", [0, 1, 2], ids=lambda q: f"qos{q}")
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mosquitto_pub_to_mosquitto_sub(broker, protocol, qos):
    topic = f"roost-it/{unique('mosq')}/cli"
    payloads = [f"roost-cli-{protocol}-{qos}-{i}" for i in range(MESSAGES)]
    subscriber = Subscriber(broker, protocol, qos, topic, MESSAGES)
    subscriber.wait_subscribed()

    # -l publishes each stdin line as one message over a single connection.
    published = subprocess.run(
        [
            require("mosquitto_pub"),
            "-h", broker.host, "-p", str(broker.port),
            "-V", protocol, "-q", str(qos), "-t", topic,
            "-i", unique("mosq-pub"), "-l",
        ],
        input="\n".join(payloads) + "\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
    )
    assert published.returncode == 0, f"mosquitto_pub failed: {published.stderr}"

    code = subscriber.finish()
    received = [line for line in subscriber.lines if line.startswith("roost-cli-")]
    assert code == 0, f"mosquitto_sub exit code {code}:\n" + "\n".join(subscriber.lines)
    assert received == payloads


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mosquitto_sub_receives_retained_message(broker, protocol):
    topic = f"roost-it/{unique('mosq')}/retained"
    published = subprocess.run(
        [
            require("mosquitto_pub"),
            "-h", broker.host, "-p", str(broker.port),
            "-V", protocol, "-q", "1", "-t", topic, "-r", "-m", "roost-cli-retained",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
    )
    assert published.returncode == 0, f"mosquitto_pub failed: {published.stderr}"
    received = subprocess.run(
        [
            require("mosquitto_sub"),
            "-h", broker.host, "-p", str(broker.port),
            "-V", protocol, "-q", "1", "-t", topic, "-C", "1", "-W", str(int(TIMEOUT)),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 5,
    )
    assert received.returncode == 0, f"mosquitto_sub exit code {received.returncode}: {received.stderr}"
    assert received.stdout.strip() == "roost-cli-retained"
