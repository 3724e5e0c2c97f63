"""The web dashboard in a real browser (headless Chromium through Playwright):
log in, a failed login, the connection count following a client, kicking it,
browsing and deleting a retained message, and the built-in MQTT client
publishing to a mosquitto_sub subscriber. Screenshots go to the artefacts
directory (conftest.ARTEFACTS)."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

import pytest
from playwright.sync_api import expect

from conftest import log_in, shot
from roost_interop import TIMEOUT, V5, Client, unique


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: run scripts/install-test-deps.sh (Debian package mosquitto-clients)")
    return path


def connections_card(page):
    return page.locator('[data-stat="connections"]')


def test_a_failed_login_shows_an_error(page, dashboard_broker):
    log_in(page, dashboard_broker, password="not the password")
    expect(page.get_by_role("alert")).to_contain_text("Login failed")
    expect(page.get_by_role("heading", name="Log in to Roost")).to_be_visible()
    shot(page, "login-failed")


def test_log_in_and_see_the_overview(page, dashboard_broker):
    log_in(page, dashboard_broker)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(connections_card(page)).to_have_text("0")
    expect(page.locator(".uplot")).to_have_count(2)
    # A few polls on the charts for the picture (not a condition of the test).
    page.wait_for_timeout(4500)
    shot(page, "overview")


def test_the_connection_count_follows_a_client_and_kick_disconnects_it(page, dashboard_broker):
    log_in(page, dashboard_broker)
    expect(connections_card(page)).to_have_text("0")
    client_id = unique("kick-me")
    client = Client(dashboard_broker.process, version=V5, client_id=client_id)
    try:
        client.connect()
        # The overview polls every 2 s: the card shows the new connection.
        expect(connections_card(page)).to_have_text("1")
        page.get_by_role("link", name="Clients").click()
        expect(page.get_by_role("heading", name="Clients")).to_be_visible()
        page.get_by_label("Client id contains").fill(client_id)
        page.get_by_role("button", name="Search").click()
        page.get_by_role("button", name=client_id, exact=True).click()
        expect(page.get_by_role("region", name=f"Details of {client_id}")).to_be_visible()
        shot(page, "clients")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Kick {client_id}", exact=True).first.click()
        assert client.disconnected.wait(TIMEOUT), "the kicked client was not disconnected"
        expect(page.get_by_role("status").filter(has_text=f"Kicked {client_id}")).to_be_visible()
    finally:
        client.close()
    page.get_by_role("link", name="Overview").click()
    expect(connections_card(page)).to_have_text("0")


def test_browse_and_delete_a_retained_message(page, dashboard_broker):
    topic = f"{unique('dash')}/retained/one"
    subprocess.run(
        [require("mosquitto_pub"), "-h", dashboard_broker.host, "-p", str(dashboard_broker.port),
         "-t", topic, "-m", "kept for the browser", "-r", "-q", "1"],
        check=True, timeout=TIMEOUT, capture_output=True,
    )
    log_in(page, dashboard_broker)
    page.get_by_role("link", name="Retained").click()
    page.get_by_label("Topic filter").fill(topic.split("/")[0] + "/#")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("button", name=topic, exact=True).click()
    expect(page.get_by_label("Payload")).to_have_text("kept for the browser")
    shot(page, "retained")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {topic}", exact=True).first.click()
    expect(page.get_by_text("No retained message matches.")).to_be_visible()
    # The broker forgot it: a new subscriber gets nothing retained.
    out = subprocess.run(
        [require("mosquitto_sub"), "-h", dashboard_broker.host, "-p", str(dashboard_broker.port),
         "-t", topic, "-C", "1", "-W", "2", "--retained-only"],
        timeout=TIMEOUT, capture_output=True, text=True,
    )
    assert out.stdout == ""


def test_the_built_in_client_publishes_to_mosquitto_sub(page, dashboard_broker):
    topic = f"{unique('dash')}/from-browser"
    received: list[str] = []
    subscribed = threading.Event()
    sub = subprocess.Popen(
        [require("stdbuf"), "-oL", require("mosquitto_sub"), "-h", dashboard_broker.host,
         "-p", str(dashboard_broker.port), "-t", topic, "-C", "1", "-W", str(int(TIMEOUT) + 20), "-d"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )

    def read():
        assert sub.stdout is not None
        for line in sub.stdout:
            received.append(line.rstrip("\n"))
            if "received SUBACK" in line:
                subscribed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert subscribed.wait(TIMEOUT), "\n".join(received)
        log_in(page, dashboard_broker)
        page.get_by_role("link", name="MQTT client").click()
        expect(page.get_by_label("WebSocket URL")).to_have_value(re.compile(r"ws://.+:\d+/mqtt"))
        page.get_by_role("button", name="Connect", exact=True).click()
        expect(page.locator("#mqtt-state")).to_contain_text("Connected")
        page.get_by_label("Topic filter").fill(topic)
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("#mqtt-state")).to_contain_text(f"Subscribed to {topic}")
        page.get_by_label("Topic", exact=True).fill(topic)
        page.get_by_label("Payload").fill("hello from the browser")
        page.get_by_role("button", name="Publish").click()
        sub.wait(TIMEOUT)
        assert "hello from the browser" in received, received
        # The browser's own subscription got it back too.
        expect(page.get_by_role("list", name="Messages received")).to_contain_text("hello from the browser")
        shot(page, "mqtt-client", full_page=True)
    finally:
        if sub.poll() is None:
            sub.kill()


PAGES = [
    ("Overview", "Overview", "overview"),
    ("Clients", "Clients", "clients"),
    ("Subscriptions", "Subscriptions and topics", "subscriptions"),
    ("Retained", "Retained messages", "retained"),
    ("Banned", "Banned clients", "banned"),
    ("Listeners", "Listeners", "listeners"),
    ("MQTT client", "MQTT client", "mqtt"),
]


@pytest.mark.parametrize("width", [1000, 375], ids=["wide", "narrow"])
def test_every_page_opens_from_the_menu_with_its_heading_focused(browser, dashboard_broker, width):
    """Each page from the menu, wide and at 375 px (a phone, where the menu
    folds behind a button): its heading gets the focus. One screenshot of
    each page (docs/dashboard/ takes the wide ones)."""
    context = browser.new_context(viewport={"width": width, "height": 700})
    context.set_default_timeout(TIMEOUT * 1000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        log_in(page, dashboard_broker)
        for link, heading, name in PAGES:
            if width < 641:
                menu = page.get_by_role("button", name="Menu")
                expect(menu).to_be_visible()
                menu.click()
            page.get_by_role("link", name=link, exact=True).click()
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_focused()
            # Let lists and charts fill before the picture.
            page.wait_for_load_state("networkidle")
            shot(page, f"page-{name}-{width}")
    finally:
        context.close()
    assert not errors, errors


def test_ban_add_and_remove(page, dashboard_broker):
    value = unique("banned-client")
    log_in(page, dashboard_broker)
    page.get_by_role("link", name="Banned").click()
    page.get_by_label("Kind").select_option("clientid")
    page.get_by_label("Value").fill(value)
    page.get_by_label("Reason (optional)").fill("test")
    page.get_by_role("button", name="Ban", exact=True).click()
    expect(page.get_by_role("cell", name=value, exact=True)).to_be_visible()
    shot(page, "banned-one")
    page.get_by_role("button", name=f"Remove the ban of clientid {value}").click()
    expect(page.get_by_role("cell", name=value, exact=True)).to_have_count(0)


def test_subscribe_and_unsubscribe_a_client_from_its_page(page, dashboard_broker):
    """The client page subscribes a connected client to a filter (the
    broker routes to it as if it had subscribed) and unsubscribes it."""
    mosquitto_pub = require("mosquitto_pub")
    log_in(page, dashboard_broker)
    client_id = unique("subscribe-me")
    filter_ = f"dash/{client_id}/+"
    client = Client(dashboard_broker.process, version=V5, client_id=client_id)
    try:
        client.connect()
        page.get_by_role("link", name="Clients").click()
        page.get_by_label("Client id contains").fill(client_id)
        page.get_by_role("button", name="Search").click()
        page.get_by_role("button", name=client_id, exact=True).click()
        detail = page.get_by_role("region", name=f"Details of {client_id}")
        expect(detail).to_be_visible()
        expect(detail).to_contain_text("Keep alive")
        detail.get_by_label("Subscribe to filter").fill(filter_)
        detail.get_by_label("QoS").select_option("1")
        detail.get_by_role("button", name="Subscribe", exact=True).click()
        expect(page.get_by_role("cell", name=filter_, exact=True)).to_be_visible()
        shot(page, "client-subscribed")
        subprocess.run(
            [mosquitto_pub, "-h", dashboard_broker.host, "-p", str(dashboard_broker.port),
             "-q", "1", "-t", f"dash/{client_id}/x", "-m", "through the dashboard"],
            check=True, timeout=TIMEOUT,
        )
        message = client.expect_message()
        assert message.topic == f"dash/{client_id}/x"
        assert message.payload == b"through the dashboard"
        page.get_by_role("button", name=f"Unsubscribe {client_id} from {filter_}").click()
        expect(page.get_by_role("cell", name=filter_, exact=True)).to_have_count(0)
    finally:
        client.close()


def test_static_files_need_no_token_and_the_api_refuses_a_page_without_one(page, dashboard_broker):
    """Before logging in: the page and its scripts load without credentials,
    and an API call made from the page without a token gets 401."""
    for path in ("/", "/dashboard/app.js", "/dashboard/style.css"):
        response = page.request.get(dashboard_broker.url + path)
        assert response.status == 200, path
    page.goto(dashboard_broker.url + "/")
    expect(page.get_by_role("heading", name="Log in to Roost")).to_be_visible()
    status = page.evaluate("fetch('/api/v1/stats').then((r) => r.status)")
    assert status == 401
    body = page.evaluate("fetch('/api/v1/clients').then((r) => r.json())")
    assert body["code"] == "UNAUTHORIZED"
