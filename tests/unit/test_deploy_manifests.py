"""The deployment manifests are valid for their tools and give each BAL node what one BAL
of several nodes needs: deploy/compose.yaml against the Compose Specification's schema,
deploy/k8s/ against the Kubernetes API's schemas (offline, kubernetes-validate), and what
no schema knows: settings the BAL accepts, stable node names, probes on /healthz, time to
stop, placeholders only in Secrets, a 4-validator QBFT chain with free gas, a broker that
keeps what it acknowledged."""

from __future__ import annotations

import importlib
import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from platone_bal.config import Settings
from tests.unit.test_broker_config import options

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DATA = ROOT / "tests" / "data" / "deploy"
# the oldest Kubernetes the manifests claim (policy/v1 PodDisruptionBudget, batch/v1 Job),
# and the newest the validator knows
OLDEST_KUBERNETES = "1.28"
PLACEHOLDER = "CHANGE-ME"
SETTINGS = {f"BAL_{name.upper()}" for name in Settings.model_fields}
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104  the nodes listen beyond their container
# what tests/unit/test_broker_config.py holds the node's own Mosquitto to
DURABLE = {
    "persistence": "true",
    "autosave_on_changes": "true",
    "autosave_interval": "1",
    "queue_qos0_messages": "true",
}
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|_KEY$")
NODE = re.compile(r"^bal-\d+$")


def require(module: str) -> ModuleType:
    """`module`, or a skip (a failure under BAL_REQUIRE_INTEGRATION, as in CI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(f"{module} is required to check the manifests: pip install -e '.[dev]'")
        pytest.skip(f"{module} not installed; BAL_REQUIRE_INTEGRATION=1 makes this a failure")


# --- reading the manifests --------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def k8s_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in k8s_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def k8s(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        document
        for _, document in k8s_documents()
        if document["kind"] == kind and name in (None, document["metadata"]["name"])
    ]


def only(kind: str, name: str) -> dict[str, Any]:
    (found,) = k8s(kind, name)
    return found


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("StatefulSet", "Deployment", "Job", "DaemonSet"):
        for document in k8s(kind):
            yield f"{kind}/{document['metadata']['name']}", document["spec"]["template"]["spec"]


def interpolate(value: str) -> str:
    """Compose's interpolation with a test value for every variable, `$$` as `$`."""
    resolved = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", r"test-\1", value)
    return resolved.replace("$$", "$")


def compose_nodes() -> dict[str, dict[str, str]]:
    """Each BAL node service's environment, interpolated."""
    nodes = {name: service for name, service in services().items() if NODE.match(name)}
    assert len(nodes) >= 2, "the stack runs several nodes"
    return {
        name: {key: interpolate(str(value)) for key, value in service["environment"].items()}
        for name, service in nodes.items()
    }


def container_env(container: dict[str, Any], pod_name: str) -> dict[str, str]:
    """A container's environment as the kubelet makes it: ConfigMaps of envFrom, then env
    (Secrets as test values, the pod's name from fieldRef, $(VAR) expanded)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(only("ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(
                r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda match: env.get(match.group(1), match.group(0)),
                entry["value"],
            )
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = f"test-{entry['valueFrom']['secretKeyRef']['key']}"
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[entry["name"]] = pod_name
    return env


def bal_nodes() -> dict[str, Any]:
    return only("StatefulSet", "bal")


def bal_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = bal_nodes()["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a node starts with in exactly `env` (the test's own BAL_* set aside)."""
    for name in list(os.environ):
        if name.startswith("BAL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def listeners(text: str) -> dict[str, dict[str, str]]:
    """Options of each `listener PORT` block of a mosquitto.conf."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if not key or key.startswith("#"):
            continue
        if key == "listener":
            current = found.setdefault(value.split()[0], {})
        elif current is not None:
            current[key] = value
    return found


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1].rstrip("/")


# --- the tools' own schemas --------------------------------------------------------------


@pytest.mark.parametrize("path", k8s_files(), ids=lambda path: path.name)
def test_every_kubernetes_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    validator = require("kubernetes_validate")
    newest = validator.latest_version()
    documents = [document for document in yaml.safe_load_all(path.read_text()) if document]
    assert documents
    problems: list[str] = []
    for document in documents:
        if document["kind"] == "Kustomization":
            continue  # kustomize's own file: no API schema (kubectl kustomize reads it)
        name = f"{document['kind']} {document['metadata']['name']}"
        for version in (OLDEST_KUBERNETES, newest):
            # strict: a field the API does not have (a typo) is an error too
            try:
                validator.validate(document, version, strict=True)
            except validator.ValidationError as error:
                where = ".".join(str(item) for item in error.path)
                problems.append(f"{name} {where}: {error.message} (Kubernetes {version})")
            except validator.SchemaNotFoundError as error:
                problems.append(f"{name}: {error.message}")
    assert problems == []


def test_the_validator_rejects_a_broken_manifest() -> None:
    validator = require("kubernetes_validate")
    broken = json.loads(json.dumps(bal_nodes()))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, OLDEST_KUBERNETES, strict=True)
    del broken["spec"]["replicas"]
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 40  # not a field
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, OLDEST_KUBERNETES, strict=True)


def test_compose_is_valid_against_the_compose_specification() -> None:
    jsonschema = require("jsonschema")
    schema = json.loads((DATA / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'.'.join(str(item) for item in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(compose())
    ]
    assert errors == []
    broken = compose()
    broken["services"]["bal-1"]["stop_grace_periodd"] = "30s"
    assert not validator.is_valid(broken)


def test_the_kustomization_applies_every_manifest_but_the_secret_templates() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "platone-bal"
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in k8s_files()} - {"kustomization.yaml"}
    assert listed == on_disk - {"secrets.example.yaml"}
    for _, document in k8s_documents():
        if document["kind"] not in ("Kustomization", "Namespace"):
            assert document["metadata"]["namespace"] == "platone-bal", document["metadata"]


# --- what the BAL needs -----------------------------------------------------------------


def test_every_bal_variable_named_in_deploy_is_a_setting() -> None:
    named: set[str] = set()
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            named |= set(re.findall(r"\bBAL_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert "BAL_NODE_NAME" in named
    assert named - SETTINGS == set()


def test_each_compose_node_is_one_of_several_with_a_stable_name_and_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = compose_nodes()
    names = {env["BAL_NODE_NAME"] for env in nodes.values()}
    assert names == set(nodes)  # distinct, and fixed in the file: stable across re-creations
    for name, env in nodes.items():
        settings = settings_from(env, monkeypatch)
        assert settings.store == "postgres", name
        assert settings.broker == "mosquitto", name
        assert settings.mqtt_shared_group == "bal", name
        assert settings.node_name == name
        assert settings.chain == "rpc", name
        assert settings.mqtt_url.startswith("mqtts://") and settings.mqtt_ca_file, name
        assert (settings.bind, settings.http_port) == (EVERY_INTERFACE, 8080), name
        assert "profiles" in services()[name] and "stack" in services()[name]["profiles"]
    # one BAL: the same database, broker, passphrase and group on every node
    shared = ("BAL_DATABASE_URL", "BAL_KEY_PASSPHRASE", "BAL_MQTT_URL", "BAL_MQTT_SHARED_GROUP")
    for key in shared:
        assert len({env[key] for env in nodes.values()}) == 1, key


def test_the_kubernetes_nodes_are_a_statefulset_named_by_their_pods_with_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = bal_nodes()
    assert nodes["spec"]["replicas"] >= 2
    headless = only("Service", nodes["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    container = bal_container()
    (name_entry,) = [entry for entry in container["env"] if entry["name"] == "BAL_NODE_NAME"]
    assert name_entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    settings = settings_from(container_env(container, "bal-0"), monkeypatch)
    assert settings.node_name == "bal-0"
    assert settings.store == "postgres"
    assert settings.broker == "mosquitto"
    assert settings.mqtt_shared_group == "bal"
    assert settings.chain == "rpc" and settings.chain_url
    assert settings.mqtt_url.startswith("mqtts://") and settings.mqtt_ca_file
    assert settings.database_url is not None
    assert "test-password@" in settings.database_url.get_secret_value()
    assert (settings.bind, settings.http_port) == (EVERY_INTERFACE, 8080)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == settings.http_port
    http = only("Service", "bal")
    assert http["spec"]["selector"] == nodes["spec"]["selector"]["matchLabels"]
    assert [port["port"] for port in http["spec"]["ports"]] == [8080]


def test_the_contract_deployment_runs_bal_chain_deploy_with_the_nodes_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = only("Job", "bal-chain-deploy")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "bal chain deploy --rpc" in " ".join(container["command"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    settings = settings_from(container_env(container, "bal-chain-deploy-x"), monkeypatch)
    node = settings_from(container_env(bal_container(), "bal-0"), monkeypatch)
    assert settings.database_url == node.database_url
    assert settings.key_passphrase == node.key_passphrase
    assert settings.chain_url == node.chain_url
    # the job's pods are not nodes: no Service, StatefulSet or budget selects them
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert not set(bal_nodes()["spec"]["selector"]["matchLabels"].items()) <= set(labels.items())
    one_shot = services()["bal-deploy-contracts"]
    assert "bal chain deploy --rpc http://besu-1:8545" in " ".join(one_shot["command"])
    for name, service in services().items():
        if NODE.match(name):
            condition = service["depends_on"]["bal-deploy-contracts"]["condition"]
            assert condition == "service_completed_successfully", name


def test_the_nodes_probes_and_the_balancer_check_healthz() -> None:
    container = bal_container()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
        assert container[probe]["httpGet"]["port"] == "http", probe
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    assert "option httpchk GET /healthz" in haproxy
    assert "http-check expect status 200" in haproxy
    for name, service in services().items():
        if NODE.match(name):
            assert "http://127.0.0.1:8080/healthz" in " ".join(service["healthcheck"]["test"])
            assert re.search(rf"^\s*server {name} {name}:8080 check$", haproxy, re.M), name
    balancer = services()["lb"]
    assert balancer["ports"] == ["8080:8080"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in balancer["volumes"]


def test_every_stop_has_time_to_finish() -> None:
    grace = Settings().shutdown_grace  # 20 s
    for name, service in services().items():
        declared = service.get("stop_grace_period", "10s")
        assert re.fullmatch(r"\d+s", declared) and int(declared[:-1]) >= 30, name
    for name, spec in pod_specs():
        assert spec.get("terminationGracePeriodSeconds", 30) >= 30, name
    spec = bal_nodes()["spec"]["template"]["spec"]
    pre_stop = bal_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + grace + 10


def test_pods_run_as_non_root_with_requests_and_limits() -> None:
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_a_disruption_leaves_a_node_up() -> None:
    (budget,) = k8s("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == bal_nodes()["spec"]["selector"]


def test_secrets_hold_placeholders_only_and_credentials_come_from_them() -> None:
    secrets = k8s("Secret")
    assert {secret["metadata"]["name"] for secret in secrets} == {
        "bal-secrets",
        "postgres-credentials",
        "mosquitto-tls",
    }
    for secret in secrets:
        assert "data" not in secret, secret["metadata"]["name"]  # base64: not a placeholder
        assert set(secret["stringData"].values()) == {PLACEHOLDER}, secret["metadata"]["name"]
    keys = {(secret["metadata"]["name"], key) for secret in secrets for key in secret["stringData"]}
    for name, spec in pod_specs():
        for container in spec.get("initContainers", []) + spec["containers"]:
            for entry in container.get("env", []):
                if "valueFrom" in entry and "secretKeyRef" in entry["valueFrom"]:
                    reference = entry["valueFrom"]["secretKeyRef"]
                    assert (reference["name"], reference["key"]) in keys, name
                elif SECRET_NAME.search(entry["name"]):
                    pytest.fail(f"{name}: {entry['name']} is not from a Secret")
                elif entry["name"] == "BAL_DATABASE_URL":
                    assert re.match(r"postgresql://\w+:\$\(\w+\)@", entry["value"]), name
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", []):
                    assert (volume["secret"]["secretName"], item["key"]) in keys, name
    for _, document in k8s_documents():
        if document["kind"] == "ConfigMap":
            assert not any(SECRET_NAME.search(key) for key in document["data"]), document
    # compose: secrets only from the environment, never written into the file
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), (name, key)
            elif key == "BAL_DATABASE_URL":
                assert re.match(r"postgresql://\w+:\$\{\w+:\?[^}]+\}@", str(value)), name


def test_the_chain_is_a_qbft_network_of_4_validators_with_free_gas() -> None:
    config = json.loads((DEPLOY / "besu" / "qbft-config.json").read_text())
    genesis = config["genesis"]["config"]
    assert "qbft" in genesis
    assert not {"ethash", "clique", "ibft2"} & set(genesis)
    assert config["blockchain"]["nodes"] == {"generate": True, "count": 4}
    assert "alloc" in config["genesis"] and not config["genesis"]["alloc"]  # no keys in git
    # free gas as Besu documents it: a zero base fee from London on, min-gas-price 0
    assert genesis["londonBlock"] == 0 and genesis["zeroBaseFee"] is True
    besu = tomllib.loads((DEPLOY / "besu" / "config.toml").read_text())
    assert besu["min-gas-price"] == 0 and besu["tx-pool-min-gas-price"] == 0
    assert "tx-pool-price-bump" not in besu  # Besu refuses it with a zero base fee
    assert besu["rpc-http-enabled"] is True and {"ETH", "NET"} <= set(besu["rpc-http-api"])
    # the contracts' EVM version is active from the genesis on
    artifacts = ROOT / "src" / "platone_bal" / "adapters" / "artifacts" / "contracts.json"
    evm = json.loads(artifacts.read_text())["evmVersion"]
    assert genesis[f"{evm}Time"] == 0
    validators = {name: s for name, s in services().items() if re.fullmatch(r"besu-\d", name)}
    assert sorted(validators) == ["besu-1", "besu-2", "besu-3", "besu-4"]
    images = {s["image"] for s in validators.values()} | {services()["besu-init"]["image"]}
    assert len(images) == 1 and not images.pop().endswith(":latest")
    data = set()
    for name, service in validators.items():
        assert service["command"] == [name]
        assert service["depends_on"]["besu-init"]["condition"] == "service_completed_successfully"
        (volume,) = [mount for mount in service["volumes"] if mount.endswith(":/data")]
        data.add(volume)
        hosts = besu["host-allowlist"]
        assert name in hosts
    assert len(data) == 4  # a chain database per validator
    for name, env in compose_nodes().items():
        assert env["BAL_CHAIN_URL"].split("//")[1].split(":")[0] in validators, name


def test_the_stack_mosquitto_keeps_what_it_acknowledged_and_gives_each_node_its_session() -> None:
    text = (DEPLOY / "mosquitto-stack.conf").read_text()
    found = options(text)
    for key, value in DURABLE.items():
        assert found[key] == [value], key
    (queued,) = found["max_queued_messages"]
    assert int(queued) >= 1_000_000  # never 0: Mosquitto 2.0.11 then kicks denied publishers
    (inflight,) = found["max_inflight_messages"]
    assert int(inflight) == 0 or int(inflight) >= 100  # the nodes' Receive Maximum
    assert found["allow_anonymous"] == ["false"]
    assert found["plugin"] == ["/usr/lib/mosquitto_dynamic_security.so"]
    blocks = listeners(text)
    assert set(blocks) == {"8883", "8884"}
    for port, block in blocks.items():
        assert {"certfile", "keyfile"} <= set(block), port  # TLS everywhere
    # devices: the client id is the login; nodes: a session each (one login for all)
    assert blocks["8883"].get("use_username_as_clientid") == "true"
    assert "use_username_as_clientid" not in blocks["8884"]
    nodes_url = {env["BAL_MQTT_URL"] for env in compose_nodes().values()}
    nodes_url.add(only("ConfigMap", "bal-settings")["data"]["BAL_MQTT_URL"])
    assert {port_of(url) for url in nodes_url} == {"8884"}
    assert services()["mosquitto"]["ports"] == ["8883:8883"]  # 8884 is not published
    assert (
        "./mosquitto-stack.conf:/mosquitto/config/mosquitto.conf:ro"
        in (services()["mosquitto"]["volumes"])
    )
    # the cluster's broker runs the same configuration
    assert only("ConfigMap", "mosquitto-config")["data"]["mosquitto.conf"] == text
    policy = only("NetworkPolicy", "mosquitto")["spec"]["ingress"]
    (nodes_rule,) = [rule for rule in policy if rule["ports"] == [{"port": 8884}]]
    assert (
        nodes_rule["from"][0]["podSelector"]["matchLabels"]
        == (bal_nodes()["spec"]["selector"]["matchLabels"])
    )


def test_what_holds_state_has_a_named_volume() -> None:
    declared = set(compose()["volumes"])
    for name, service in services().items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, (name, source)
    stateful = {
        "postgres": "/var/lib/postgresql/data",
        "mosquitto": "/mosquitto/data",
        "besu-1": "/data",
        "besu-2": "/data",
        "besu-3": "/data",
        "besu-4": "/data",
        "bal": "/data",
    }
    for name, path in stateful.items():
        sources = [m.split(":")[0] for m in services()[name]["volumes"] if m.split(":")[1] == path]
        assert sources and sources[0] in declared, name
    for name in ("postgres", "mosquitto"):
        (claim,) = only("StatefulSet", name)["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"], name


def test_the_single_node_and_the_stack_are_separate_profiles_without_port_clashes() -> None:
    profiles: dict[str, list[str]] = {}
    for name, service in services().items():
        (profile,) = service["profiles"]  # nothing starts without naming a shape
        profiles.setdefault(profile, []).append(name)
        depends = service.get("depends_on", [])
        for target in depends if isinstance(depends, list) else list(depends):
            assert services()[target]["profiles"] == [profile], (name, target)
    assert profiles["single"] == ["bal"]
    for profile, names in profiles.items():
        published = [
            port.rsplit(":", 2)[-2] for name in names for port in services()[name].get("ports", [])
        ]
        assert len(published) == len(set(published)), profile
    # the single node runs on its embedded defaults: its own broker, SQLite and chain
    single = services()["bal"].get("environment", {})
    assert not {"BAL_STORE", "BAL_BROKER", "BAL_CHAIN"} & set(single)


def test_the_stack_and_compose_run_the_nodes_with_the_same_settings(tmp_path: Path) -> None:
    """`make stack` and deploy/compose.yaml describe one topology: each node gets the
    same settings (the data directory comes from the image in compose)."""
    from platone_bal.stack.run import Stack, StackState

    state = StackState(nodes=2, http_port=8080, mqtt_port=8883, node_ports=[8081, 8082])
    stack_env = Stack(tmp_path).node_env(state, 1)
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    compose_env = compose["services"]["bal-1"]["environment"]
    assert set(stack_env) - {"BAL_DATA_DIR"} == set(compose_env)
    for name in ("BAL_STORE", "BAL_BROKER", "BAL_MQTT_USERNAME", "BAL_MQTT_SHARED_GROUP"):
        assert stack_env[name] == compose_env[name], name
    assert stack_env["BAL_CHAIN"] == compose_env["BAL_CHAIN"] == "rpc"
