"""The verifier page checks a proof in the browser itself (Debian's Chromium, driven by
Playwright), trusting no server: once the page and its scripts have loaded, every
request to the node's HTTP port is refused, and a real anchored proof still verifies,
its anchor read from the node's chain through the read-only JSON-RPC the user names.
Tampered proofs fail at the check that was tampered with. The page's scripts are the
pinned npm packages, byte for byte, and their weight is written down."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rfc8785
from playwright.sync_api import Browser, Page, Response, expect

from platone_bal.domain.merkle import SHA3_256
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.nodes import NodeThread, publish_as_producer1, wait_for
from tests.integration.test_dashboard import (  # the same browser and page helpers
    PRODUCER,
    ROOT,
    accessible,
    browser,  # noqa: F401 (the module's browser fixture, shared)
    open_page,
    sign_in,
)

pytestmark = pytest.mark.integration

VENDOR = ROOT / "src" / "platone_bal" / "web" / "static" / "vendor"
WEIGHT = ROOT / "test-artifacts" / "verifier-page-weight.json"
SCRIPT_BUDGET = 160_000
"""Bytes of JavaScript the verifier page may load (uncompressed); it loads ~125 kB."""


@pytest.fixture(scope="module")
def anchored(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[NodeThread, dict[str, Any]]]:
    """A node with real readings and the proof of one of them once its checkpoint is on
    the node's chain (shared by the tests: starting a node and anchoring takes seconds)."""
    with NodeThread(tmp_path_factory.mktemp("verifier") / "bal", anchor_interval=1.0) as node:
        node.add_user(*PRODUCER)
        publish_as_producer1(node, SAMPLE_XML, SAMPLE_PMU)
        readings: list[dict[str, Any]] = []

        def all_stored() -> bool:
            readings[:] = node.get("/v1/readings")["items"]  # type: ignore[call-overload]
            return len(readings) == 4

        wait_for(all_stored, what="the four readings")
        reading = readings[1]["id"]
        proof: dict[str, Any] = {}

        def proof_anchored() -> bool:
            proof.update(node.get(f"/v1/readings/{reading}/proof"))
            return proof["anchor"] is not None

        wait_for(proof_anchored, timeout=30, what="the proof's anchor")
        assert proof["inclusion"], "the tests change a hash of the path: it must have one"
        yield node, proof


def rpc_url(node: NodeThread) -> str:
    return f"http://127.0.0.1:{node.settings.chain_rpc_port}"


def verifier_offline(
    chromium: Browser, node: NodeThread
) -> tuple[Page, list[str], Callable[[], None]]:
    """The verifier page, loaded with its scripts, then cut off from the node's HTTP port:
    every later request to it is refused and written down (the chain's RPC port is not
    the node's API and stays reachable). The third value reconnects the page (for
    axe-core, which open_page serves as if from the node)."""
    page = open_page(chromium, node)
    sign_in(page, PRODUCER)
    page.goto("/verify")
    expect(page.locator("form[data-verifier][data-ready]")).to_be_attached()
    refused: list[str] = []

    def refuse(route: Any) -> None:
        refused.append(f"{route.request.method} {route.request.url}")
        route.abort()

    node_origin = f"http://127.0.0.1:{node.settings.http_port}/**"
    page.route(node_origin, refuse)
    page.get_by_label("Ethereum JSON-RPC URL for the anchor check").fill(rpc_url(node))
    return page, refused, lambda: page.unroute(node_origin, refuse)


def verify_in_browser(page: Page, bundle: dict[str, Any]) -> None:
    page.get_by_label("Proof bundle (JSON)").fill(json.dumps(bundle, indent=2))
    page.get_by_role("button", name="Verify in this browser").click()
    expect(page.locator("[data-progress]")).to_contain_text("Checked in this browser")


def result_of(page: Page, check: str) -> str:
    return page.locator(f"[data-check={check}] td").first.inner_text()


def test_a_proof_verifies_in_the_browser_with_the_node_cut_off(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    anchored: tuple[NodeThread, dict[str, Any]],
) -> None:
    node, bundle = anchored
    page, refused, reconnect = verifier_offline(browser, node)
    rpc_calls: list[str] = []
    page.on(
        "request",
        lambda r: rpc_calls.append(r.method) if r.url.startswith(rpc_url(node)) else None,
    )
    verify_in_browser(page, bundle)

    expect(page.locator("[data-verdict]")).to_have_text("VALID")
    for check in ("format", "leaf", "inclusion", "signature", "anchor"):
        assert result_of(page, check) == "VALID", check
        expect(page.locator(f"[data-check={check}]")).to_contain_text("this browser")
    # the browser's leaf hash is the one the node certified (RFC 8785 + SHA3-256)
    leaf_hash = SHA3_256.hash_leaf(bytes(rfc8785.dumps(bundle["leaf"]))).hex()
    expect(page.locator("[data-check=leaf]")).to_contain_text(f"0x{leaf_hash}")
    expect(page.locator("[data-check=anchor]")).to_contain_text(f"reading {rpc_url(node)}")
    expect(page.locator("[data-check=anchor]")).to_contain_text(bundle["anchor"]["tx"])
    expect(page.locator("[data-where]")).to_contain_text(
        f"The only 3 requests that left this browser went to {rpc_url(node)}: "
        "JSON-RPC eth_chainId, eth_call, eth_getTransactionReceipt."
    )
    expect(page.locator("svg.merkle")).to_be_visible()
    assert refused == [], f"the verifier asked the node's server: {refused}"
    assert [m for m in rpc_calls if m == "POST"] == ["POST"] * 3, rpc_calls
    reconnect()
    accessible(page, "verifier-browser-valid")
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


def _flip(hex_text: str, at: int) -> str:
    """`hex_text` with its hex digit at `at` changed: still well formed, no longer true."""
    digit = "0" if hex_text[at] != "0" else "1"
    return hex_text[:at] + digit + hex_text[at + 1 :]


def _changed_value(b: dict[str, Any]) -> dict[str, Any]:
    return dict(b, leaf=dict(b["leaf"], value=b["leaf"]["value"] + "1"))


def _changed_path(b: dict[str, Any]) -> dict[str, Any]:
    return dict(b, inclusion=[_flip(b["inclusion"][0], 10), *b["inclusion"][1:]])


def _changed_signature(b: dict[str, Any]) -> dict[str, Any]:
    return dict(
        b, checkpoint=dict(b["checkpoint"], signature=_flip(b["checkpoint"]["signature"], 10))
    )


def _changed_block(b: dict[str, Any]) -> dict[str, Any]:
    return dict(b, anchor=dict(b["anchor"], block=b["anchor"]["block"] + 1))


TAMPERED: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str, dict[str, str]]] = [
    # (what changed, how, the check that must fail, what the other checks say)
    ("leaf value", _changed_value, "leaf", {"signature": "VALID", "anchor": "NOT CHECKED"}),
    ("inclusion hash", _changed_path, "inclusion", {"signature": "VALID", "anchor": "NOT CHECKED"}),
    (
        "signature",
        _changed_signature,
        "signature",
        {"leaf": "VALID", "inclusion": "VALID", "anchor": "NOT CHECKED"},
    ),
    (
        "anchor block",
        _changed_block,
        "anchor",
        {"leaf": "VALID", "inclusion": "VALID", "signature": "VALID"},
    ),
]


def test_a_tampered_proof_fails_at_the_tampered_check(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    anchored: tuple[NodeThread, dict[str, Any]],
) -> None:
    node, bundle = anchored
    page, refused, reconnect = verifier_offline(browser, node)
    for what, tamper, failing, others in TAMPERED:
        verify_in_browser(page, tamper(bundle))
        expect(page.locator("[data-verdict]"), what).to_have_text("INVALID")
        assert result_of(page, failing) == "INVALID", what
        assert {check: result_of(page, check) for check in others} == others, what
    expect(page.locator("[data-check=anchor]")).to_contain_text(
        f"is in block {bundle['anchor']['block']}, not {bundle['anchor']['block'] + 1}"
    )
    assert refused == [], f"the verifier asked the node's server: {refused}"
    reconnect()
    accessible(page, "verifier-browser-invalid")
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


def test_the_page_loads_the_pinned_packages_and_its_weight_is_known(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    anchored: tuple[NodeThread, dict[str, Any]],
) -> None:
    """Every vendored file is the pinned npm package's own file (npm ci has run here);
    the JavaScript the page loads is counted, uncompressed and as sent (gzip)."""
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    for package in manifest["packages"]:
        installed = ROOT / "node_modules" / package["name"]
        if not installed.exists():
            if os.environ.get("BAL_REQUIRE_INTEGRATION"):
                pytest.fail(f"{installed} is missing: run npm ci")
            pytest.skip("the pinned npm packages are not installed (npm ci)")
        version = json.loads((installed / "package.json").read_text())["version"]
        assert pins[package["name"]] == package["version"] == version, package["name"]
        for entry in package["files"]:
            vendored = (VENDOR / package["directory"] / entry["file"]).read_bytes()
            assert vendored == (installed / entry["from"]).read_bytes(), entry["file"]
            assert hashlib.sha256(vendored).hexdigest() == entry["sha256"], entry["file"]

    node, _ = anchored
    page = open_page(browser, node)
    sign_in(page, PRODUCER)
    page.wait_for_load_state("networkidle")  # the producer's page and its own scripts done
    scripts: list[Response] = []
    page.on(
        "response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None
    )
    page.goto("/verify")
    expect(page.locator("form[data-verifier][data-ready]")).to_be_attached()
    loaded = {r.url.split("/static/", 1)[1]: r for r in scripts}
    assert set(loaded) == {
        "verifier.js",
        *(
            f"vendor/{p['directory']}/{f['file']}"
            for p in manifest["packages"]
            for f in p["files"]
            if f["file"].endswith(".js")
        ),
    }
    files = {name: len(r.body()) for name, r in sorted(loaded.items())}
    total = sum(files.values())
    sent = sum(r.request.sizes()["responseBodySize"] for r in loaded.values())
    WEIGHT.parent.mkdir(parents=True, exist_ok=True)
    WEIGHT.write_text(json.dumps({"files": files, "bytes": total, "bytes_sent": sent}, indent=2))
    assert total < SCRIPT_BUDGET, files
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
