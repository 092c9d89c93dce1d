"""The Data lifecycle page in a real browser (Debian's Chromium, driven by Playwright):
a node's old readings, once anchored, are archived; the admin finds the day on the page,
restores it with the form, follows the job to its end and sees the day live again.
The page passes axe-core's rules while the day is archived and after the restore."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from platone_bal.ports import ArchiveStatus
from platone_bal.services.archiver import ArchiverBusy
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.nodes import ADMIN_PASSWORD, NodeThread, publish_as_producer1, wait_for
from tests.integration.test_dashboard import (  # the same browser and page helpers
    accessible,
    browser,  # noqa: F401 (the module's browser fixture, shared)
    open_page,
    sign_in,
)

pytestmark = pytest.mark.integration

XML_DAY = date(2019, 9, 13)
"""The measurement day of SAMPLE_XML's readings; SAMPLE_PMU's is 2020-05-20: both far
outside the default hot window of 60 days."""
PMU_DAY = date(2020, 5, 20)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeThread]:
    """A node whose sample readings are anchored, then archived."""
    with NodeThread(tmp_path / "bal", anchor_interval=1.0) as running:
        running.add_user("producer1", "secret-pass-1")
        publish_as_producer1(running, SAMPLE_XML, SAMPLE_PMU)
        store, archiver = running.node.store, running.node.archiver
        log = archiver.log
        wait_for(lambda: store.log_size(log) == 4, what="the four readings")

        def anchored() -> bool:
            checkpoint = store.checkpoint_covering(log, store.log_size(log) - 1)
            return checkpoint is not None and (
                store.anchor(log, checkpoint.checkpoint.size) is not None
            )

        wait_for(anchored, timeout=30, what="an anchor covering the readings")

        def archived() -> bool:
            # the leader's own archive job may hold the lease (or do the work) meanwhile
            try:
                archiver.archive_due()
            except ArchiverBusy:
                return False
            return {(r.day, r.status) for r in store.archives(log)} == {
                (XML_DAY, ArchiveStatus.ARCHIVED),
                (PMU_DAY, ArchiveStatus.ARCHIVED),
            }

        wait_for(archived, timeout=30, what="both days archived")
        assert store.live_days(log) == []
        yield running


def test_an_admin_restores_an_archived_day_in_a_real_browser(
    browser: Browser,  # noqa: F811 (the fixture imported above)
    node: NodeThread,
) -> None:
    admin = open_page(browser, node)
    sign_in(admin, ("admin", ADMIN_PASSWORD))
    expect(admin).to_have_url("/admin")
    lifecycle = admin.get_by_role("region", name="Data lifecycle")
    expect(lifecycle).to_contain_text("Archived days")
    expect(lifecycle.locator("dd").nth(2)).to_have_text("2")
    lifecycle.get_by_role("link", name="Archives and restores").click()

    expect(admin).to_have_url("/admin/archives")
    expect(admin.get_by_role("heading", name="Data lifecycle", level=1)).to_be_visible()
    xml_part = admin.locator(f'[data-part="{XML_DAY}/1"]')
    expect(xml_part.locator("[data-part-status]")).to_have_text("archived")
    expect(xml_part.locator("code.hash")).to_have_attribute("title", node_sha3(node, XML_DAY))
    expect(admin.get_by_role("cell", name="No live readings.")).to_be_visible()
    accessible(admin, "archives")

    admin.get_by_label("From day").fill(XML_DAY.isoformat())
    admin.get_by_label("To day").fill(XML_DAY.isoformat())
    admin.get_by_role("button", name="Restore days").click()
    expect(admin.get_by_role("status").first).to_contain_text(
        f"started: 1 archived part(s) of {XML_DAY}."
    )
    job = parse_qs(urlsplit(admin.url).query)["job"][0]
    status = admin.locator(f'[data-job="{job}"] [data-job-status]')
    # the page does not refresh itself: look again (its link) until the job ends
    wait_for(lambda: refreshed(admin, status) != "running", timeout=30, what="the restore")
    expect(status).to_have_text("done")
    expect(admin.locator(f'[data-job="{job}"]')).to_contain_text("1 of 1")
    expect(admin.locator(f'[data-live-day="{XML_DAY}"]')).to_contain_text("restored")
    expect(xml_part.locator("[data-part-status]")).to_have_text("restored")
    expect(admin.locator(f'[data-part="{PMU_DAY}/1"] [data-part-status]')).to_have_text("archived")
    accessible(admin, "archives-restored")

    readings = node.get("/v1/readings", **{"from": f"{XML_DAY}T00:00:00Z"})
    items = readings["items"]
    assert isinstance(items, list) and len(items) == 2
    assert {item["time"][:10] for item in items} == {XML_DAY.isoformat()}
    assert readings["archived_days"] == [PMU_DAY.isoformat()]
    assert admin.errors == [], admin.errors  # type: ignore[attr-defined]


def node_sha3(node: NodeThread, day: date) -> str:
    """The SHA3-256 the store lists for the day's first part, as the page writes it."""
    record = next(r for r in node.node.store.archives(node.node.archiver.log) if r.day == day)
    return "0x" + record.sha3.hex()


def refreshed(page: Page, status: Locator) -> str:
    """The job's status after following the page's "check progress" link, if shown."""
    link = page.get_by_role("link", name="check progress")
    if link.count():
        link.click()
        page.wait_for_load_state()
    return status.inner_text().strip()


def test_an_archive_and_a_reading_in_it_verify_against_the_nodes_chain(
    node: NodeThread, tmp_path: Path
) -> None:
    """`bal verify-archive --rpc` checks the anchor on the node's own chain; the proof
    bundle it writes for one archived reading passes `bal verify --rpc` too."""
    settings = node.node.settings
    rpc = f"http://127.0.0.1:{settings.chain_rpc_port}"
    record = next(r for r in node.node.store.archives(settings.log_id) if r.day == XML_DAY)
    file = settings.archive_path / record.file
    bundle = tmp_path / "proof.json"
    bal = str(Path(sys.executable).with_name("bal"))
    checked = subprocess.run(
        [bal, "verify-archive", str(file), "--rpc", rpc,
         "--bundle", str(record.first_index), "--out", str(bundle)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for check in ("file", "records", "tree", "signature", "anchor"):
        assert f"PASS {check}" in checked.stdout, check
    proof = subprocess.run(
        [bal, "verify", str(bundle), "--rpc", rpc],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proof.returncode == 0, proof.stdout + proof.stderr
    assert "PASS anchor" in proof.stdout
    # a changed byte in the data file: the file check fails, nothing after it runs
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 1
    file.write_bytes(bytes(data))
    tampered = subprocess.run(
        [bal, "verify-archive", str(file)], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert tampered.returncode == 1
    assert "FAIL file" in tampered.stdout
