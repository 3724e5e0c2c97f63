"""Fixtures of the dashboard's browser tests: a broker with the HTTP listener,
a WebSocket listener and one dashboard user, and a headless Chromium page
(Debian's `chromium`, driven by Playwright with `executable_path`: nothing is
downloaded at test time)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from roost_interop import TIMEOUT, BrokerProcess, roost_binary, unique  # noqa: E402

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct horse battery staple"
HTTP_LISTENING = re.compile(r"management API listening on (https?://[^\s]+)")
# Screenshots of every run: test artefacts (scripts/test.sh keeps the directory).
ARTEFACTS = Path(os.environ.get("DASHBOARD_ARTEFACTS", Path(__file__).resolve().parents[2] / "target" / "dashboard-screenshots"))


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: run interop/dashboard/install.sh (Debian package chromium)")


class DashboardBroker:
    """The broker process and the URLs the tests use."""

    def __init__(self, process: BrokerProcess, url: str):
        self.process = process
        self.url = url.rstrip("/")
        self.host = process.host
        self.port = process.port

    def stop(self):
        self.process.stop()


@pytest.fixture(scope="module")
def dashboard_broker(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dashboard")
    admin_file = directory / "admin.json"
    config = directory / "roost.toml"
    config.write_text(
        '[store]\nbackend = "memory"\n'
        '[[listeners]]\nkind = "tcp"\nbind = "127.0.0.1:0"\n'
        '[[listeners]]\nkind = "ws"\nbind = "127.0.0.1:0"\n'
        '[auth.banned]\n'
        f'[http]\nbind = "127.0.0.1:0"\nadmin_file = "{admin_file}"\n'
    )
    subprocess.run(
        [str(roost_binary()), "ctl", "--config", str(config), "admin", "create", ADMIN_USER, "--password-stdin"],
        input=ADMIN_PASSWORD + "\n", text=True, check=True, timeout=TIMEOUT, capture_output=True,
    )
    process = BrokerProcess("-c", str(config), expect=("mqtt", "ws"))
    if not process.wait_for_log("management API listening on", timeout=TIMEOUT):
        process.stop()
        raise RuntimeError("the management API did not start:\n" + process.log())
    match = HTTP_LISTENING.search(process.log())
    assert match, process.log()
    broker = DashboardBroker(process, match.group(1))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            # Containers: no user namespaces for the sandbox, a small /dev/shm.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT * 1000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{request.node.name}-end.png"))
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str, full_page: bool = False) -> None:
    """A screenshot kept with the test artefacts."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=full_page)


def log_in(page, broker: DashboardBroker, password: str = ADMIN_PASSWORD) -> None:
    page.goto(broker.url + "/")
    page.get_by_label("User name").fill(ADMIN_USER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


__all__ = ["ADMIN_PASSWORD", "ADMIN_USER", "log_in", "shot", "unique"]
