"""The reporting profile of deploy/compose.yaml as Grafana and Prometheus would load it,
checked offline (Docker cannot run here): every dashboard under deploy/grafana/dashboards/
is a dashboard of the shape Grafana's file provisioning takes, its panels name only the
provisioned data sources, compose mounts what the provisioning files name, Prometheus
scrapes every compose node, every metric a panel queries is one the node defines, and the
data dashboard reads only what its read-only role may read.

tests/integration/test_grafana_metrics.py holds the same panels to a running node and
runs the data dashboard's SQL on a real PostgreSQL store; the PromQL parsing both use is
here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.metrics import MetricWrapperBase

from platone_bal import metrics
from platone_bal.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
READER_ROLE = GRAFANA / "reader-role.sql"
REPORTING = "reporting"

PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "start", "end", "inf", "nan"}
)  # fmt: skip
PROMETHEUS_MADE = frozenset({"up"})
"""Series Prometheus itself adds to every scraped target; no node exports them."""
PANEL_TYPES = frozenset(
    {"row", "timeseries", "stat", "table", "bargauge", "state-timeline", "gauge", "text"}
)
GRAFANA_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
PINNED = re.compile(r"^[\w./-]+:v?\d+(\.\d+)*$")
"""An image named by an explicit version (no `latest`, no bare name)."""
ISSUE_METRICS = frozenset(
    {
        "bal_ingest_readings_total",  # ingest rate
        "bal_ingest_rejections_total",  # rejection rate
        "bal_ingest_queue_depth",
        "bal_log_size",
        "bal_checkpoint_size",  # checkpoint lag
        "bal_anchor_lag_readings",
        "bal_anchor_failures_total",  # chain failures
        "bal_egress_position",
        "bal_egress_readings_total",
        "bal_http_request_seconds_bucket",  # latency per route
        "bal_setpoints_total",
        "bal_leader",
    }
)
"""What issue 18 asks the operations dashboard to show."""


# --- reading the files ------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def dashboards() -> list[dict[str, Any]]:
    return [dashboard(path) for path in dashboard_files()]


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    """Every provisioned data source by uid."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            assert source["uid"] not in found, source["uid"]
            found[source["uid"]] = source
    return found


def dashboard_providers() -> list[dict[str, Any]]:
    providers: list[dict[str, Any]] = []
    for path in sorted((PROVISIONING / "dashboards").glob("*.yaml")):
        providers += yaml.safe_load(path.read_text())["providers"]
    return providers


def compose_services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())[
        "services"
    ]
    return found


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A compose service's bind mounts of the repository: container path -> host path."""
    found: dict[str, Path] = {}
    for mount in service.get("volumes", []):
        source, target = mount.split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of every panel."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target


def prometheus_expressions() -> list[tuple[str, str]]:
    """(dashboard/panel, PromQL) of every Prometheus query of every dashboard."""
    return [
        (f"{board['uid']}/{title}", target["expr"])
        for board in dashboards()
        for title, target in queries(board)
        if target["datasource"]["type"] == "prometheus"
    ]


def sql_queries() -> list[tuple[str, str]]:
    """(dashboard/panel or variable, SQL) of every PostgreSQL query, variables included."""
    found: list[tuple[str, str]] = []
    for board in dashboards():
        for title, target in queries(board):
            if target["datasource"]["type"] == "grafana-postgresql-datasource":
                found.append((f"{board['uid']}/{title}", target["rawSql"]))
        for variable in board["templating"]["list"]:
            if variable["datasource"]["type"] == "grafana-postgresql-datasource":
                found.append((f"{board['uid']}/${variable['name']}", variable["query"]))
    return found


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping label lists, function and aggregation names, keywords and
    numbers are taken out. Grafana's variables ($__rate_interval, $__range) only appear
    where those were."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if word.lower() not in PROMQL_KEYWORDS:
            names.add(word)
    return names


def queried_metrics() -> dict[str, list[str]]:
    """Each metric name the dashboards query -> the panels that query it."""
    found: dict[str, list[str]] = {}
    for where, expr in prometheus_expressions():
        for name in promql_metric_names(expr):
            found.setdefault(name, []).append(where)
    return found


def defined_samples() -> dict[str, str]:
    """Sample name -> metric, for every metric platone_bal.metrics defines, named as
    prometheus_client exposes them (counters `_total` and `_created`, histograms
    `_bucket`, `_count`, `_sum` and `_created`)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    found: dict[str, str] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                for suffix in suffixes[family.type]:
                    found[family.name + suffix] = family.name
    return found


def granted_tables() -> set[str]:
    """The tables reader-role.sql lets Grafana's role read."""
    grants = re.findall(r"GRANT SELECT ON ([\w\s,]+?) TO bal_grafana", READER_ROLE.read_text())
    return {table.strip() for grant in grants for table in grant.split(",")}


def tables_read(sql: str) -> set[str]:
    """Names after FROM or JOIN that are not calls (`extract(epoch FROM max(...))`)."""
    found = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b(?!\s*\()", sql, flags=re.IGNORECASE)
    return set(found)


# --- the dashboards ---------------------------------------------------------------------


def test_there_are_an_operations_and_a_producer_data_dashboard() -> None:
    uids = {board["uid"] for board in dashboards()}
    assert {"bal-operations", "bal-producer-data"} <= uids


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)
def test_each_dashboard_is_one_grafana_provisions(path: Path) -> None:
    board = dashboard(path)
    assert GRAFANA_UID.match(board["uid"]), board["uid"]
    assert board["title"] and isinstance(board["schemaVersion"], int)
    assert board.get("id") is None  # a provisioned dashboard gets its id from Grafana
    assert {"from", "to"} <= set(board["time"])
    assert isinstance(board["templating"]["list"], list)
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    taken: set[tuple[int, int]] = set()
    for panel in panels(board):
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["title"], panel["id"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["y"] + dy, grid["x"] + dx) for dy in range(grid["h"]) for dx in range(grid["w"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] in ("row", "text"):
            continue
        assert panel["description"], f"{panel['title']}: say what it shows"
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({target["refId"] for target in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["datasource"] == panel["datasource"], panel["title"]
            if target["datasource"]["type"] == "prometheus":
                assert target["expr"].strip(), panel["title"]
                assert target["expr"].count("(") == target["expr"].count(")"), panel["title"]
            else:
                assert target["rawQuery"] is True and target["rawSql"].strip(), panel["title"]
                assert target["format"] in ("table", "time_series"), panel["title"]


def test_dashboard_uids_and_titles_are_unique() -> None:
    boards = dashboards()
    assert len({board["uid"] for board in boards}) == len(boards)
    assert len({board["title"] for board in boards}) == len(boards)


def test_every_data_source_a_dashboard_names_is_provisioned_with_that_type() -> None:
    provisioned = provisioned_datasources()
    for board in dashboards():
        named = [panel["datasource"] for panel in panels(board) if "datasource" in panel]
        named += [target["datasource"] for _, target in queries(board)]
        named += [variable["datasource"] for variable in board["templating"]["list"]]
        for reference in named:
            assert reference["uid"] in provisioned, (board["uid"], reference)
            assert provisioned[reference["uid"]]["type"] == reference["type"], board["uid"]


def test_the_operations_dashboard_shows_what_the_issue_asks() -> None:
    queried = set(queried_metrics())
    assert queried >= ISSUE_METRICS, ISSUE_METRICS - queried
    latency = [expr for _, expr in prometheus_expressions() if "bal_http_request_seconds" in expr]
    assert any("histogram_quantile(" in expr and "route" in expr for expr in latency)


def test_every_metric_a_panel_queries_is_one_the_node_defines() -> None:
    defined = defined_samples()
    unknown = {
        name: where
        for name, where in queried_metrics().items()
        if name not in defined and name not in PROMETHEUS_MADE
    }
    assert unknown == {}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("bal_leader", {"bal_leader"}),
        ('sum(up{job="bal"})', {"up"}),
        (
            "histogram_quantile(0.95, sum by (le, route) (rate(bal_http_request_seconds_bucket"
            '{route=~"/v1/.*", status!="500"}[$__rate_interval])))',
            {"bal_http_request_seconds_bucket"},
        ),
        (
            "max by (log) (bal_log_size) - max by (log) (bal_checkpoint_size) and on (log) x_y",
            {"bal_log_size", "bal_checkpoint_size", "x_y"},
        ),
        ("sum(increase(a_total[$__range] offset 5m)) * 60 / 1e3", {"a_total"}),
        ("rate(a[5m:30s]) unless ignoring (node) b", {"a", "b"}),
        ('count(a) by (node) > bool 2 or label_replace(c, "x", "$1", "y", "(.*)")', {"a", "c"}),
    ],
)
def test_the_promql_parser_finds_exactly_the_metric_names(expr: str, names: set[str]) -> None:
    """The integration test compares these names with a node's scrape: a parser that
    found none would let any panel pass."""
    assert promql_metric_names(expr) == names


def test_the_data_dashboard_reads_only_what_its_role_may_read() -> None:
    granted = granted_tables()
    assert granted == {"device_hours", "device_last", "readings", "rejections", "setpoints"}
    found = sql_queries()
    assert found
    for where, sql in found:
        read = tables_read(sql)
        assert read and read <= granted, (where, read - granted)
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|DROP|ALTER|CREATE)\b", sql, re.I), where


# --- provisioning and compose -----------------------------------------------------------


def test_the_reporting_services_are_pinned_and_only_in_their_profile() -> None:
    services = compose_services()
    reporting = {name for name, service in services.items() if REPORTING in service["profiles"]}
    assert reporting == {"prometheus", "grafana", "grafana-db-reader"}
    for name in reporting:
        assert PINNED.match(services[name]["image"]), (name, services[name]["image"])
        assert services[name]["profiles"] == [REPORTING], name
    # Prometheus has no login: never on more than the loopback address
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]


def test_compose_mounts_the_grafana_provisioning_and_every_dashboard() -> None:
    grafana = compose_services()["grafana"]
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == PROVISIONING.resolve()
    assert PROVISIONING.is_dir()
    providers = dashboard_providers()
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        path = provider["options"]["path"]
        assert path in mounted, f"the provider reads {path}, which compose does not mount"
        assert mounted[path] == DASHBOARDS.resolve()
        assert {p.name for p in mounted[path].glob("*.json")} == {p.name for p in dashboard_files()}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    directory, _, name = home.rpartition("/")
    assert (mounted[directory] / name).is_file()


def test_the_data_sources_are_the_compose_services() -> None:
    services = compose_services()
    sources = provisioned_datasources()
    (prometheus,) = [s for s in sources.values() if s["type"] == "prometheus"]
    assert prometheus["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    assert (
        prometheus["jsonData"]["timeInterval"]
        == yaml.safe_load(PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"]
    )
    (postgres,) = [s for s in sources.values() if s["type"] == "grafana-postgresql-datasource"]
    host, port = postgres["url"].split(":")
    assert host in services and port == "5432"
    assert postgres["jsonData"]["database"] == services[host]["environment"]["POSTGRES_DB"]
    assert postgres["user"] == "bal_grafana"
    assert "CREATE ROLE bal_grafana" in READER_ROLE.read_text()
    variable = re.fullmatch(r"\$__env\{(\w+)\}", postgres["secureJsonData"]["password"])
    assert variable is not None
    assert variable.group(1) in services["grafana"]["environment"]
    reader = services["grafana-db-reader"]
    assert variable.group(1) in reader["environment"]
    assert mounts(reader)["/grafana/reader-role.sh"] == (GRAFANA / "reader-role.sh").resolve()
    assert mounts(reader)["/grafana/reader-role.sql"] == READER_ROLE.resolve()
    assert reader["entrypoint"] == ["sh", "/grafana/reader-role.sh"]


def test_prometheus_scrapes_every_compose_node_on_its_metrics_route() -> None:
    services = compose_services()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "bal"]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    nodes = {name for name in services if re.fullmatch(r"bal(-\d+)?", name)}
    assert set(discovery["names"]) == nodes
    ports = {Settings().http_port}  # the single node on its defaults
    for name in nodes:
        environment = services[name].get("environment", {})
        ports.add(int(environment.get("BAL_HTTP_PORT", Settings().http_port)))
    assert ports == {discovery["port"]}
    (relabel,) = job["relabel_configs"]
    assert relabel == {"source_labels": ["__meta_dns_name"], "target_label": "node"}
    # the balancer would mix the nodes' counters: never scraped through it
    assert "lb" not in discovery["names"]
    mounted = mounts(services["prometheus"])
    (config_flag,) = [
        flag for flag in services["prometheus"]["command"] if flag.startswith("--config.file=")
    ]
    assert mounted[config_flag.split("=", 1)[1]] == PROMETHEUS_CONFIG.resolve()
