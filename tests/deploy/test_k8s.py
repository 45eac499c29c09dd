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
from tests.deploy.tools import REPO, SERVICES, find_tool

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
        if service.name in ("router", "crm-sink"):
            # Optional: without keys the API is closed (401), never open.
            assert env["API_KEYS"]["valueFrom"] == {
                "secretKeyRef": {"name": "socialcrm-api-keys", "key": "keys", "optional": True}
            }
        else:
            assert "API_KEYS" not in env
        if service.name in AUTOSCALED:
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        elif overlay == "local":
            assert deployment["spec"]["replicas"] == 1
        else:
            # kpi too: one active pod and a fenced hot standby.
            assert deployment["spec"]["replicas"] >= 2


def test_config_map_has_the_common_settings(manifests: tuple[Manifest, ...]) -> None:
    (config,) = of_kind(manifests, "ConfigMap").values()
    data = config["data"]
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


def test_topic_job_creates_every_contract_topic(manifests: tuple[Manifest, ...]) -> None:
    (job,) = of_kind(manifests, "Job").values()
    main = container(job)
    env = {e["name"]: e.get("value") for e in main["env"]}
    topics = env["TOPICS"].split()
    assert [*topics, *(t + ".dlq" for t in topics)] == contract.all_topics()
    script = main["args"][0]
    assert "--if-not-exists" in script
    assert '"$topic.dlq"' in script
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    (config,) = of_kind(manifests, "ConfigMap").values()
    assert config["data"]["TOPIC_PARTITIONS"] == "12"
