"""The Kubernetes manifests: every overlay renders, is schema-valid and follows our rules.

Rendering uses ``kustomize`` (bin/setup installs it into .cache/bin) or, when only kubectl
is there, ``kubectl kustomize``. Validation uses kubernetes-validate's schemas of
Kubernetes ``K8S_VERSION``, offline.
"""

from __future__ import annotations

import functools
import subprocess
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from socialcrm import contract
from tests.deploy.tools import REPO, SERVICES, find_tool, kafka_acls

K8S_VERSION = "1.34.0"
K8S_DIR = REPO / "deploy" / "k8s"
OVERLAYS = ("local", "production")
AUTOSCALED = {"ingest", "sentiment"}
NAMESPACE = "socialcrm"

Manifest = dict[str, Any]


@functools.cache
def render(path: str) -> tuple[Manifest, ...]:
    """The manifests of the kustomization at ``path`` (relative to deploy/k8s)."""
    kustomize = find_tool("kustomize")
    kubectl = find_tool("kubectl")
    if kustomize is not None:
        argv = [kustomize, "build", str(K8S_DIR / path)]
    elif kubectl is not None:
        argv = [kubectl, "kustomize", str(K8S_DIR / path)]
    else:
        pytest.skip("kustomize not found: bin/setup installs it into .cache/bin")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(manifests: tuple[Manifest, ...], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def container(deployment: Manifest) -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def manifests(overlay: str) -> tuple[Manifest, ...]:
    return render(f"overlays/{overlay}")


def test_base_renders() -> None:
    assert of_kind(render("base"), "Deployment").keys() == {s.name for s in SERVICES}


def test_manifests_are_valid_kubernetes(manifests: tuple[Manifest, ...]) -> None:
    errors = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(map(str, error.absolute_path))
            errors.append(
                f"{manifest['kind']}/{manifest['metadata']['name']} {where}: {error.message}"
            )
    assert not errors, "\n".join(errors)


def test_everything_is_in_the_namespace(manifests: tuple[Manifest, ...]) -> None:
    assert of_kind(manifests, "Namespace").keys() == {NAMESPACE}
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["metadata"]["name"]


def test_no_secret_is_committed(manifests: tuple[Manifest, ...]) -> None:
    assert not of_kind(manifests, "Secret")


def test_deployments(overlay: str, manifests: tuple[Manifest, ...]) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert deployments.keys() == {s.name for s in SERVICES}
    configmaps = of_kind(manifests, "ConfigMap")
    for service in SERVICES:
        deployment = deployments[service.name]
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["image"] == f"ghcr.io/socialcrm/{service.name}:0.1.0"
        assert main["ports"] == [{"name": "http", "containerPort": service.port, "protocol": "TCP"}]
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        limits = main["resources"]["limits"]
        assert {"cpu", "memory"} <= limits.keys() <= {"cpu", "memory", "ephemeral-storage"}
        assert {"cpu", "memory"} <= main["resources"]["requests"].keys()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
        env = {e["name"]: e for e in main["env"]}
        assert env["HTTP_PORT"]["value"] == str(service.port)
        config_ref, *secret_refs = main["envFrom"]
        config_name = config_ref["configMapRef"]["name"]
        if service.name == "ingest":
            # Required: webhooks fail closed (no Secret, no pod).
            assert secret_refs == [{"secretRef": {"name": "socialcrm-ingest"}}]
        else:
            assert secret_refs == []
        assert config_name.startswith("socialcrm-config-")
        assert config_name in configmaps
        if service.name == "crm-sink":
            assert env["MONGODB_URI"]["valueFrom"] == {
                "secretKeyRef": {"name": "socialcrm-mongodb", "key": "uri"}
            }
        else:
            assert "MONGODB_URI" not in env
        if service.name in ("router", "crm-sink", "workspace"):
            # Optional: without keys the API is closed (401), never open.
            assert env["API_KEYS"]["valueFrom"] == {
                "secretKeyRef": {"name": "socialcrm-api-keys", "key": "keys", "optional": True}
            }
        else:
            assert "API_KEYS" not in env
        # Its own Kafka user; the password from a Secret; the brokers' CA mounted.
        assert env["KAFKA_SASL_USERNAME"]["value"] == service.name
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "socialcrm-kafka-users", "key": service.name}
        }
        assert {
            "name": "kafka-ca",
            "mountPath": "/etc/socialcrm/kafka-ca",
            "readOnly": True,
        } in main["volumeMounts"]
        assert {"name": "kafka-ca", "secret": {"secretName": "socialcrm-kafka-ca"}} in pod[
            "volumes"
        ]
        if service.name in AUTOSCALED:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        elif overlay == "local":
            assert deployment["spec"]["replicas"] == 1
        else:
            # kpi too: one active pod and a fenced hot standby.
            assert deployment["spec"]["replicas"] >= 2


def settings_config_map(manifests: tuple[Manifest, ...]) -> Manifest:
    (config,) = (
        m
        for name, m in of_kind(manifests, "ConfigMap").items()
        if name.startswith("socialcrm-config-")
    )
    return config


def test_config_map_has_the_common_settings(manifests: tuple[Manifest, ...]) -> None:
    data = settings_config_map(manifests)["data"]
    for key in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "TOPIC_PARTITIONS",
        "TOPIC_REPLICATION_FACTOR",
        "MONGODB_DATABASE",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        assert data[key], key
    assert "MONGODB_URI" not in data, "the connection string is a secret"
    # Kafka is a trust boundary: every client authenticates over TLS (README, security).
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KAFKA_SASL_MECHANISM"].startswith("SCRAM-SHA-")
    assert data["KAFKA_SSL_CAFILE"] == "/etc/socialcrm/kafka-ca/ca.crt"
    assert not {key for key in data if "PASSWORD" in key}


def test_services_and_disruption_budgets(manifests: tuple[Manifest, ...]) -> None:
    services = of_kind(manifests, "Service")
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for service in SERVICES:
        selector = {"app.kubernetes.io/name": service.name}
        assert services[service.name]["spec"]["selector"] == selector
        assert services[service.name]["spec"]["ports"][0]["port"] == service.port
        assert budgets[service.name]["spec"]["selector"]["matchLabels"] == selector


def test_autoscalers(overlay: str, manifests: tuple[Manifest, ...]) -> None:
    autoscalers = of_kind(manifests, "HorizontalPodAutoscaler")
    assert autoscalers.keys() == AUTOSCALED
    for name, hpa in autoscalers.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert spec["metrics"][0]["resource"]["name"] == "cpu"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        assert spec["minReplicas"] == (1 if overlay == "local" else 3)


def test_network_policy_admits_the_service_ports(manifests: tuple[Manifest, ...]) -> None:
    (policy,) = of_kind(manifests, "NetworkPolicy").values()
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ports == {s.port for s in SERVICES}
    selected = policy["spec"]["podSelector"]["matchLabels"]
    for deployment in of_kind(manifests, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selected.items() <= labels.items()


def test_kafka_setup_job_sets_users_acls_and_every_contract_topic(
    manifests: tuple[Manifest, ...],
) -> None:
    (job,) = of_kind(manifests, "Job").values()
    main = container(job)
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e for e in main["env"]}
    topics = env["TOPICS"]["value"].split()
    assert [*topics, *(t + ".dlq" for t in topics)] == contract.all_topics()
    # The script and the ACL table come from the files in deploy/k8s/base/kafka.
    (setup,) = (v for v in pod["volumes"] if v["name"] == "setup")
    files = of_kind(manifests, "ConfigMap")[setup["configMap"]["name"]]["data"]
    kafka_dir = K8S_DIR / "base" / "kafka"
    assert files == {
        "setup.sh": (kafka_dir / "setup.sh").read_text(),
        "acls.txt": (kafka_dir / "acls.txt").read_text(),
    }
    assert main["command"] == ["/bin/bash", "/etc/socialcrm/kafka-setup/setup.sh"]
    assert env["ACLS"]["value"] == "/etc/socialcrm/kafka-setup/acls.txt"
    assert "--if-not-exists" in files["setup.sh"]
    assert '"$topic.dlq"' in files["setup.sh"]
    for key in ("username", "password"):
        variable = f"KAFKA_SASL_{key.upper()}"
        assert env[variable]["valueFrom"] == {
            "secretKeyRef": {"name": "socialcrm-kafka-admin", "key": key}
        }
    for service in SERVICES:
        variable = "KAFKA_PASSWORD_" + service.name.upper().replace("-", "_")
        assert env[variable]["valueFrom"] == {
            "secretKeyRef": {"name": "socialcrm-kafka-users", "key": service.name, "optional": True}
        }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert settings_config_map(manifests)["data"]["TOPIC_PARTITIONS"] == "12"


# Who writes which topic: each service its own, and the dead letters of what it reads.
WRITERS = {
    "social.interactions.v1": {"ingest"},
    "social.enriched.v1": {"sentiment"},
    "social.routed.v1": {"router"},
    "social.escalations.v1": {"router"},
    "social.replies.v1": {"router"},
    # The router's reply API, and crm-sink's erase commands to the router's owners.
    "router.sla-commands.v1": {"router", "crm-sink"},
    "alerts.v1": {"router", "kpi"},
    "crm.events.v1": {"crm-sink"},
    "kpi.snapshots.v1": {"kpi"},
    # Compacted state: written and created by its owner only (test_internal_topics.py).
    **{topic.name: {topic.owner} for topic in contract.INTERNAL_TOPICS},
}


# Readers outside any group that rebuild a view from the topics at every start: they
# dead-letter nothing (every replica would dead-letter the same record at every start).
VIEW_READERS = {"workspace"}


def test_kafka_acls_let_each_service_write_only_its_own_topics() -> None:
    acls = kafka_acls()
    assert {acl.user for acl in acls} == {s.name for s in SERVICES}
    topic_acls = [a for a in acls if a.resource == "topic"]
    assert all(a.pattern == "literal" for a in topic_acls), "no wildcard writes"

    def who(operation: str, topic: str) -> set[str]:
        return {a.user for a in topic_acls if a.name == topic and operation in a.operations}

    for topic in [*contract.all_topics(), *WRITERS]:
        if topic.endswith(contract.DLQ_SUFFIX):
            source = topic.removesuffix(contract.DLQ_SUFFIX)
            # A dead letter comes from a reader of the source (or its writer, refusing input).
            assert who("Write", topic) <= who("Read", source) | who("Write", source), topic
            readers = who("Read", source) - VIEW_READERS
            assert readers <= who("Write", topic), f"{topic}: a reader cannot DLQ"
        else:
            assert who("Write", topic) == WRITERS[topic], topic
            assert who("Create", topic) <= WRITERS[topic], topic
    written = {a.name for a in topic_acls if "Write" in a.operations}
    assert written <= set(contract.all_topics()) | set(WRITERS)
    for acl in acls:
        if acl.name == "*":
            assert acl.operations == ("Describe",), "every service may list topics, no more"
        elif acl.resource in ("group", "transactional-id"):
            # Groups and transactional ids start with the service's name (SERVICE_NAME).
            assert acl.pattern == "prefixed"
            assert acl.name == acl.user
