"""Fixtures for the paho-mqtt / mosquitto_pub+sub interop suite."""

from __future__ import annotations

import pytest

from roost_interop import BrokerProcess, Client


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
