"""Fixtures for the paho-mqtt / mosquitto_pub+sub interop suite."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from roost_interop import TIMEOUT, BrokerProcess, Client


@pytest.fixture(scope="module")
def broker(request):
    """One `roost -p 0` per test module; tests isolate themselves with unique
    client ids and topics."""
    process = BrokerProcess()
    yield process
    process.stop()


@pytest.fixture
def fresh_broker():
    """A broker of the test's own, for tests that subscribe to `#` or depend on
    broker-wide state."""
    process = BrokerProcess()
    yield process
    process.stop()


@pytest.fixture
def clients():
    """Factory `clients(broker, **kwargs) -> Client`; every client is closed at teardown."""
    made: list[Client] = []

    def make(broker: BrokerProcess, **kwargs) -> Client:
        client = Client(broker, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the broker's stderr to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name in ("fresh_broker", "broker"):
            process = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(process, BrokerProcess):
                report.sections.append((f"roost stderr ({name}, {' '.join(process.args)})", process.log()))


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of this test's own on a free loopback port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: run scripts/install-test-deps.sh")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            pytest.fail("redis-server did not answer PING")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    server.kill()
    server.wait(TIMEOUT)
