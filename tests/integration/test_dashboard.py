"""The dashboard in a real browser (Debian's Chromium, driven by Playwright), as a new
user would use it: a consumer asks, the producer accepts in another browser, the
consumer charts the data; a downloaded proof verifies VALID and, with one digit
changed, INVALID at the leaf check. Every page passes axe-core's accessibility rules;
screenshots go to test-artifacts/screenshots/ (the README shows copies)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from eth_account import Account
from playwright.sync_api import Browser, Page, expect, sync_playwright

from platone_bal.domain.merkle import SHA3_256
from platone_bal.simulate import connect, signed_envelope
from tests.conftest import SAMPLE_PMU, SAMPLE_XML, require_binary
from tests.integration.nodes import ADMIN_PASSWORD, NodeThread, publish_as_producer1, wait_for

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"
PRODUCER = ("producer1", "secret-pass-1")
CONSUMER = ("consumer1", "secret-pass-2")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_binary("chromium")
    if not AXE.exists():
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"{AXE} is missing: run npm ci")
        pytest.skip("axe-core is not installed (npm ci)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    with NodeThread(tmp_path / "bal", anchor_interval=1.0) as running:
        running.add_user(*PRODUCER)
        running.add_user(*CONSUMER, role="consumer")
        publish_as_producer1(running, SAMPLE_XML, SAMPLE_PMU)
        wait_for(lambda: running.get("/v1/readings")["items"] != [], what="readings")
        yield running


def open_page(browser: Browser, node: NodeThread) -> Page:
    """A fresh browser context (its own cookies): a second person at another desk."""
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{node.settings.http_port}",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    # axe-core is served as if it were the node's own file, so the page's CSP allows it.
    page.route(
        "**/test-only/axe.min.js",
        lambda route: route.fulfill(body=AXE.read_text(), content_type="text/javascript"),
    )
    return page


def sign_in(page: Page, who: tuple[str, str]) -> None:
    page.goto("/")
    expect(page).to_have_url("/login")
    page.get_by_label("Username").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()


def accessible(page: Page, name: str) -> None:
    """No axe-core violations (WCAG 2.1 A/AA rules); a screenshot of the page either way."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.add_script_tag(url="/test-only/axe.min.js")
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa']})"
    )
    problems = [
        f"{v['id']}: {v['help']} ({[n['target'] for n in v['nodes']][:3]})"
        for v in result["violations"]
    ]
    assert problems == [], f"{name}: {problems}"


def test_grant_chart_and_verify_in_a_real_browser(browser: Browser, node: NodeThread) -> None:
    consumer = open_page(browser, node)
    consumer.goto("/login")
    accessible(consumer, "login")
    consumer.get_by_label("Username").fill("consumer1")
    consumer.get_by_label("Password").fill("wrong-password")
    consumer.get_by_role("button", name="Sign in").click()
    expect(consumer.get_by_role("alert")).to_contain_text("Wrong username or password")

    sign_in(consumer, CONSUMER)
    expect(consumer).to_have_url("/consumer")
    expect(consumer.get_by_role("row", name="producer1")).to_contain_text("none")
    consumer.get_by_text("Request access to producer1").click()
    consumer.get_by_label("Why you need it").fill("voltage study")
    consumer.get_by_role("button", name="Request access").click()
    expect(consumer.get_by_role("status").first).to_contain_text("requested")
    expect(consumer.get_by_role("row", name="producer1").first).to_contain_text("requested")
    accessible(consumer, "consumer-requested")

    producer = open_page(browser, node)
    sign_in(producer, PRODUCER)
    expect(producer).to_have_url("/producer")
    request_row = producer.get_by_role("row").filter(has_text="voltage study")
    expect(request_row).to_contain_text("consumer1")
    accessible(producer, "producer-request")
    producer.get_by_role("button", name="Accept grant 1 for consumer1").click()
    expect(producer.get_by_role("status").first).to_contain_text("accepted")
    expect(producer.locator("[data-chart] .main-svg").first).to_be_visible()
    expect(producer.locator("[data-table] tbody tr").first).to_be_visible()
    accessible(producer, "producer")

    consumer.reload()
    expect(consumer.get_by_role("row", name="producer1").first).to_contain_text("accepted")
    expect(consumer.locator("[data-chart] .main-svg").first).to_be_visible()
    expect(consumer.locator("[data-status]").first).to_contain_text("readings of producer1")
    consumer.get_by_label("Device", exact=True).select_option("pmu1")
    expect(consumer.locator("[data-table] tbody tr")).to_have_count(1)  # one bus per series
    # the history chart: the store's buckets of the same device and measurand
    expect(consumer.locator("[data-history-chart] .main-svg").first).to_be_visible()
    expect(consumer.locator("[data-history-caption]")).to_contain_text("summarised by the store")
    consumer.get_by_label("History of this device and measurand").select_option("365")
    expect(consumer.locator("[data-history-caption]")).to_contain_text("buckets of 105120 s")
    accessible(consumer, "consumer-chart")

    # A proof from the dashboard verifies, once its checkpoint is anchored.
    wait_for(lambda: node.get("/v1/anchors")["items"] != [], timeout=20, what="an anchor")
    with consumer.expect_download() as download:
        consumer.locator("[data-table] a", has_text="proof").first.click()
    proof_file = Path(download.value.path())
    bundle = json.loads(proof_file.read_text())
    consumer.goto("/verify")
    consumer.get_by_label("…or a proof file").set_input_files(str(proof_file))
    consumer.get_by_role("button", name="Verify").click()
    expect(consumer.locator("[data-verdict]")).to_have_text("VALID")
    for check in ("format", "leaf", "inclusion", "signature"):
        expect(consumer.locator(f"[data-check={check}] td").first).to_have_text("VALID")
    expect(consumer.locator("svg.merkle")).to_be_visible()
    accessible(consumer, "verifier-valid")

    changed = dict(bundle, leaf=dict(bundle["leaf"], value=bundle["leaf"]["value"] + "1"))
    consumer.get_by_label("Proof bundle (JSON)").fill(json.dumps(changed, indent=2))
    consumer.get_by_role("button", name="Verify").click()
    expect(consumer.locator("[data-verdict]")).to_have_text("INVALID")
    expect(consumer.locator("[data-check=leaf] td").first).to_have_text("INVALID")
    accessible(consumer, "verifier-invalid")

    # Explorer and the operators' page.
    consumer.goto("/explorer?reading=3")
    expect(consumer.locator("ol.path")).to_contain_text("pmu1 voltmagnitude = 11")
    expect(consumer.locator("ol.path")).to_contain_text("transaction 0x")
    accessible(consumer, "explorer")
    admin = open_page(browser, node)
    sign_in(admin, ("admin", "admin-pass-1"))
    expect(admin).to_have_url("/admin")
    expect(admin.get_by_text("Anchor lag")).to_be_visible()
    accessible(admin, "admin")

    # On a tablet the pages fit the screen's width (wide tables scroll in their card).
    for page, path, name in (
        (consumer, "/consumer", "consumer-tablet"),
        (producer, "/producer", "producer-tablet"),
    ):
        page.set_viewport_size({"width": 820, "height": 1180})
        page.goto(path)
        expect(page.locator("[data-chart] .main-svg").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        accessible(page, name)
    for page in (consumer, producer, admin):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


def test_api_docs_need_no_internet(browser: Browser, node: NodeThread) -> None:
    """Swagger UI comes from the node (closed control-room networks)."""
    page = open_page(browser, node)
    origin = f"http://127.0.0.1:{node.settings.http_port}/"
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(origin) else outside.append(r.url))
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()  # the 3.1 document rendered
    expect(page.get_by_text("/v1/readings", exact=True).first).to_be_visible()
    assert outside == []
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


def test_markup_in_a_payload_is_shown_as_text_in_charts(browser: Browser, node: NodeThread) -> None:
    """Plotly renders <a href>, <b>, <br> in titles and names: a device id with a link
    must stay text (it became a clickable link in the consumer's chart title)."""
    device = '<a href="https://example.org/phish">pmu9</a>'
    unit = "<b>kV</b>"
    payload = json.loads(SAMPLE_PMU)
    payload["device"] = device
    for reading in payload["readings"]:
        reading["unit"] = unit
    publish_as_producer1(node, json.dumps(payload).encode())
    wait_for(
        lambda: any(r["device"] == device for r in node.get("/v1/readings")["items"]),
        what="the reading with markup in its device id",
    )
    producer = open_page(browser, node)
    sign_in(producer, PRODUCER)
    expect(producer).to_have_url("/producer")
    producer.locator('[data-series] [name="device"]').select_option(device)
    chart = producer.locator("[data-chart]").first
    expect(chart.locator(".gtitle")).to_contain_text(device)
    expect(chart.locator(".ytitle")).to_have_text(unit)
    assert chart.locator("svg a").count() == 0
    assert chart.locator("svg b, svg tspan[style*='bold']").count() == 0
    assert producer.errors == [], producer.errors  # type: ignore[attr-defined]


def test_the_dso_registers_and_revokes_a_light_nodes_key_on_its_pages(
    browser: Browser, node: NodeThread
) -> None:
    """The admin (DSO) registers a Light Node's key from the admin page; the producer's
    page shows the key, its state and the last signed reading; the admin revokes it."""
    light_node = Account.create()
    producer_token = node.token(*PRODUCER)
    device = node.http.post(
        "/v1/devices",
        json={
            "device_id": "ln1",
            "kind": "light-node",
            "public_key": light_node.address,
            "mqtt_credentials": True,
        },
        headers=producer_token,
    ).json()
    admin = open_page(browser, node)
    sign_in(admin, ("admin", ADMIN_PASSWORD))
    expect(admin).to_have_url("/admin")
    admin.get_by_role("button", name="Register the key of producer1/ln1").click()
    expect(admin.get_by_text("Key of producer1/ln1 registered")).to_be_visible()
    accessible(admin, "admin-device-keys")

    client = connect(
        f"mqtt://127.0.0.1:{node.settings.mqtt_port}",
        device["mqtt_username"],
        device["mqtt_password"],
    )
    payload = SAMPLE_PMU.replace(b'"pmu1"', b'"ln1"')
    client.publish("platone/producer1/ln1", signed_envelope(payload, "ln1", light_node), qos=1)
    client.disconnect()
    client.loop_stop()
    wait_for(
        lambda: any(r["device"] == "ln1" for r in node.get("/v1/readings")["items"]),
        what="the signed reading",
    )
    # the DSO issues a set point from its page; the Light Node answers it, signed
    admin.get_by_label("Device", exact=True).fill("ln1")
    admin.get_by_label("Measurand").fill("activePowerLimit")
    admin.get_by_label("Value").fill("3.5")
    admin.get_by_label("Unit").fill("kW")
    admin.get_by_role("button", name="Issue set point").click()
    expect(admin.get_by_text("Set point 1 issued")).to_be_visible()
    bundle: dict[str, Any] = {}

    def certified() -> bool:
        bundle.update(node.http.get("/v1/setpoints/1/proof", headers=node.token()).json())
        return "leaf" in bundle

    wait_for(certified, what="the set point's proof")
    leaf_hash = "0x" + SHA3_256.hash_leaf(rfc8785.dumps(bundle["leaf"])).hex()
    answer = {"setpoint": bundle["index"], "leaf_hash": leaf_hash, "status": "applied",
              "time": "2026-12-01T12:00:00Z"}  # fmt: skip
    client = connect(
        f"mqtt://127.0.0.1:{node.settings.mqtt_port}",
        device["mqtt_username"],
        device["mqtt_password"],
    )
    ack = signed_envelope(json.dumps(answer).encode(), "ln1", light_node)
    client.publish("platone/producer1/ln1/ack", ack, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    wait_for(lambda: node.get("/v1/setpoints/1")["status"] == "applied", what="the answer")

    producer = open_page(browser, node)
    sign_in(producer, PRODUCER)
    setpoint_row = producer.get_by_role("row").filter(has_text="activePowerLimit")
    expect(setpoint_row).to_contain_text("applied at")
    expect(setpoint_row).to_contain_text(light_node.address)
    with producer.expect_download() as download:
        producer.get_by_role("link", name="Proof of the answer to set point 1").click()
    proof = json.loads(Path(download.value.path()).read_text())
    assert proof["leaf"]["kind"] == "answer" and proof["leaf"]["signer"] == light_node.address
    producer.goto("/explorer")
    explored = producer.get_by_role("row").filter(has_text="activePowerLimit")
    expect(explored).to_contain_text("applied")
    expect(producer.get_by_role("link", name="Proof of set point 1")).to_be_visible()
    accessible(producer, "explorer-setpoints")
    producer.goto("/producer")
    row = producer.get_by_role("row").filter(has_text="light-node")
    expect(row).to_contain_text(f"{light_node.address}, registered")
    expect(row).to_contain_text(f"signed by {light_node.address}")
    accessible(producer, "producer-light-node")

    admin.get_by_role("button", name="Revoke the key of producer1/ln1").click()
    expect(admin.get_by_text("Key of producer1/ln1 revoked")).to_be_visible()
    producer.reload()
    expect(producer.get_by_role("row").filter(has_text="light-node")).to_contain_text("revoked")
    assert admin.errors == [] and producer.errors == []  # type: ignore[attr-defined]
