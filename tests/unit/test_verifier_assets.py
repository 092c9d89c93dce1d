"""The verifier page's scripts (static/verifier.js and the npm files vendored under
static/vendor/): the node serves them as JavaScript, unchanged from the pinned packages
(their SHA-256 is recorded in vendor/manifest.json), the page and its module graph name
no other origin, and only the verifier's page may connect beyond the node.
(The checks themselves run in Chromium: tests/integration/test_browser_verifier.py.)"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from fastapi.testclient import TestClient

from platone_bal.api.context import ApiContext
from platone_bal.web import STATIC
from tests.unit.test_api import add_user
from tests.unit.test_dashboard_pages import sign_in

ROOT = Path(__file__).resolve().parents[2]
VENDOR = STATIC / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())
JAVASCRIPT = {"text/javascript", "application/javascript"}
"""What browsers accept for a module script (a wrong type and the import is refused)."""
IMPORT = re.compile(
    r"""^\s*(?:import\s+(?:[^;'"]*?\bfrom\s*)?|export\s+[^;'"]*?\bfrom\s*)["']([^"']+)["']""",
    re.M,
)
"""A static import or re-export's module specifier (dynamic import() is not used)."""


def vendored() -> list[tuple[dict[str, Any], dict[str, str]]]:
    """(package, file entry) of every file the manifest records."""
    return [(package, entry) for package in MANIFEST["packages"] for entry in package["files"]]


def media_type(answer: Any) -> str:
    return str(answer.headers["content-type"]).split(";")[0].strip()


def test_vendored_files_are_served_unchanged_as_javascript(client: TestClient) -> None:
    listed = set()
    for package, entry in vendored():
        path = f"{package['directory']}/{entry['file']}"
        listed.add(path)
        answer = client.get(f"/static/vendor/{path}")
        assert answer.status_code == 200, path
        assert hashlib.sha256(answer.content).hexdigest() == entry["sha256"], path
        if path.endswith(".js"):
            assert media_type(answer) in JAVASCRIPT, (path, answer.headers["content-type"])
    # nothing is vendored that the manifest does not vouch for
    on_disk = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == listed
    assert media_type(client.get("/static/verifier.js")) in JAVASCRIPT
    assert client.get("/static/vendor/manifest.json").json() == MANIFEST


def test_vendored_files_are_the_pinned_packages() -> None:
    """package.json pins each package (as a devDependency), the lock file holds that
    version, and where npm has installed it the vendored files are its own bytes (the
    integration test insists on it after npm ci)."""
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for package in MANIFEST["packages"]:
        name, version = package["name"], package["version"]
        assert pins[name] == version, name
        assert lock[""]["devDependencies"][name] == version, name
        assert (lock[f"node_modules/{name}"]["version"], lock[f"node_modules/{name}"]["dev"]) == (
            version,
            True,
        )
        assert any(entry["file"] == "LICENSE" for entry in package["files"]), name
        installed = ROOT / "node_modules" / name
        if not (installed / "package.json").exists():
            continue
        assert json.loads((installed / "package.json").read_text())["version"] == version
        for entry in package["files"]:
            source = (installed / entry["from"]).read_bytes()
            assert hashlib.sha256(source).hexdigest() == entry["sha256"], entry["from"]


def test_the_module_graph_stays_on_the_node(client: TestClient) -> None:
    """From verifier.js, every import is a relative path the node serves and the
    manifest records: nothing is fetched from elsewhere, nothing unpinned runs."""
    recorded = {
        f"/static/vendor/{package['directory']}/{entry['file']}" for package, entry in vendored()
    }
    seen: set[str] = set()
    waiting = ["/static/verifier.js"]
    while waiting:
        url = waiting.pop()
        if url in seen:
            continue
        seen.add(url)
        answer = client.get(url)
        assert answer.status_code == 200 and media_type(answer) in JAVASCRIPT, url
        for specifier in IMPORT.findall(answer.text):
            assert specifier.startswith(("./", "../")), f"{url} imports {specifier}"
            waiting.append(urljoin(url, specifier))
    assert seen - {"/static/verifier.js"} <= recorded
    assert len(seen) == 6, seen  # verifier.js, sha3, utils, _u64, secp256k1, canonicalize


class _Links(HTMLParser):
    """Every URL a page's markup would make the browser load or send to."""

    URL_ATTRIBUTES = frozenset({"src", "href", "action", "formaction", "data", "poster"})

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in self.URL_ATTRIBUTES]
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_the_verifier_page_names_no_other_origin(client: TestClient, admin: dict[str, str]) -> None:
    add_user(client, admin, "consumer1", "consumer")
    sign_in(client, "consumer1", "pass-consumer1")
    page = client.get("/verify")
    links = _Links()
    links.feed(page.text)
    assert links.urls, "the page has links"
    for url in links.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # a path on the node, or #fragment
    assert {"src": "/static/verifier.js", "type": "module"} in links.scripts
    # the other script element is data (the proof format), which no browser runs
    assert [s.get("type") for s in links.scripts if "src" not in s] == ["application/json"]

    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self' http: https:;" in policy  # the RPC URL the user types
    for other in ("/explorer", "/consumer"):
        assert "connect-src 'self';" in client.get(other).headers["content-security-policy"]


@dataclass(frozen=True)
class _WithChainRpc(ApiContext):
    """A node context that serves the embedded chain's read-only JSON-RPC."""

    chain_rpc_port: int | None = None


def test_the_default_rpc_is_the_nodes_own_read_only_rpc(
    client: TestClient, admin: dict[str, str]
) -> None:
    add_user(client, admin, "consumer1", "consumer")
    sign_in(client, "consumer1", "pass-consumer1")
    field = re.compile(r'<input id="rpc" name="rpc" type="url" value="([^"]*)"')
    assert field.findall(client.get("/verify").text) == [""]  # none: the reader names one

    app: Any = client.app
    context = app.state.context
    values = {f.name: getattr(context, f.name) for f in fields(context)}
    app.state.context = _WithChainRpc(**{**values, "chain_rpc_port": 8545})
    page = client.get("/verify").text
    assert field.findall(page) == ["http://testserver:8545"]
    assert "this node's own read-only view of its chain" in page
