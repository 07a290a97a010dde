"""deploy/k8s: rendered by the real kustomize, validated against the Kubernetes schemas (kubernetes-validate,
offline), and checked against the service itself (its routes, default port and settings)."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from tests.deploy.manifests import K8S, by_kind, get_routes

CORE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
WORKER_RSS_MB = 165  # one granian worker's resident memory after `make bench`: 162 MB at d0b6e86 (README, Performance)
APP_LABELS = {"app.kubernetes.io/name": "modelserve"}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def config(objects: list[dict[str, Any]]) -> dict[str, str]:
    return by_kind(objects, "ConfigMap")["data"]


def quantity_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi|M|G)?", value).groups()
    return int(number) * {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "M": 10**6, "G": 10**9, None: 1}[unit]


def quantity_cpu(value: str) -> float:
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


@pytest.fixture(params=["base", "production"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return request.getfixturevalue(f"{request.param}_objects")


def test_kustomize_renders_every_object(base_objects: list, production_objects: list) -> None:
    assert {o["kind"] for o in base_objects} == CORE_KINDS | OPERATOR_KINDS
    assert {o["kind"] for o in production_objects} == CORE_KINDS | OPERATOR_KINDS | {"Namespace"}
    assert all(o["metadata"]["namespace"] == "modelserve" for o in production_objects if o["kind"] != "Namespace")
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "modelserve" for o in base_objects)


def test_every_core_object_matches_the_kubernetes_schema(objects: list[dict[str, Any]]) -> None:
    version = kubernetes_validate.latest_version()
    validated = []
    for obj in objects:
        if obj["kind"] in OPERATOR_KINDS:
            # CRDs: kubernetes-validate has no schema for them (checked structurally below).
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, version, strict=True)
            continue
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError on any mistake
        validated.append(obj["kind"])
    assert set(validated) >= CORE_KINDS


def test_schema_validation_catches_a_broken_deployment(base_objects: list[dict[str, Any]]) -> None:
    """The validator is not a no-op: a misspelt field and a wrong type are refused."""
    deployment = yaml.safe_load(yaml.safe_dump(by_kind(base_objects, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)
    deployment = yaml.safe_load(yaml.safe_dump(by_kind(base_objects, "Deployment")))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_probes_use_the_service_routes_and_port(objects: list[dict[str, Any]]) -> None:
    routes = get_routes()
    main = container(objects)
    port, grpc = main["ports"]
    assert port == {"name": "http", "containerPort": Settings().port, "protocol": "TCP"}
    assert int(config(objects)["SERVICE_PORT"]) == port["containerPort"]
    assert grpc == {"name": "grpc", "containerPort": Settings().grpc_port, "protocol": "TCP"}
    assert int(config(objects)["SERVICE_GRPC_PORT"]) == grpc["containerPort"]
    probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health/live"
    assert probes["readinessProbe"]["path"] == "/health/ready"
    for probe in probes.values():
        assert probe["path"] in routes
        assert probe["port"] == "http"
    # Start-up may take a while (sha256 of every file, ONNX sessions, the reference self-check).
    startup = main["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_pod_security(objects: list[dict[str, Any]]) -> None:
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["enableServiceLinks"] is False, "a Service's SERVICE_PORT=tcp://... would collide with the settings"
    assert pod["automountServiceAccountToken"] is False
    security = container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True


def test_the_only_writable_path_holds_the_metrics_dir(objects: list[dict[str, Any]]) -> None:
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    (mount,) = container(objects)["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount["name"] == volume["name"] and "emptyDir" in volume
    assert config(objects)["SERVICE_METRICS_DIR"].startswith(mount["mountPath"].rstrip("/") + "/")


def test_termination_grace_outlasts_pre_stop_and_drain(objects: list[dict[str, Any]]) -> None:
    pod = by_kind(objects, "Deployment")["spec"]["template"]["spec"]
    command = container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    drain = float(config(objects)["SERVICE_DRAIN_SECONDS"])
    assert pre_stop >= 3, "long enough for endpoint removal to propagate"
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_settings_come_from_the_config_map_and_parse(objects: list[dict[str, Any]]) -> None:
    main = container(objects)
    (source,) = main["envFrom"]
    assert source["configMapRef"]["name"] == by_kind(objects, "ConfigMap")["metadata"]["name"]
    data = config(objects)
    known = {"SERVICE_" + name.upper() for name in Settings.model_fields}
    assert set(data) <= known, f"unknown settings: {set(data) - known}"
    assert {"SERVICE_HEART_VERSION", "SERVICE_DIGITS_VERSION", "SERVICE_WORKERS", "SERVICE_DRAIN_SECONDS"} <= set(data)
    settings = Settings.from_env({**data, "SERVICE_ADMIN_TOKEN": "x" * 32})  # the service's own parser
    assert settings.host == "0.0.0.0"
    assert settings.heart_version is None and settings.digits_version is None  # follow CURRENT by default


def test_admin_token_is_a_secret_reference_only(objects: list[dict[str, Any]]) -> None:
    (token,) = [e for e in container(objects)["env"] if e["name"] == "SERVICE_ADMIN_TOKEN"]
    assert set(token) == {"name", "valueFrom"}
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "modelserve-admin", "key": "token", "optional": False}
    assert not [o for o in objects if o["kind"] == "Secret"]
    for path in K8S.rglob("*.yaml"):
        assert "kind: Secret" not in path.read_text(), f"{path} commits a Secret"


def test_resources_fit_the_workers(objects: list[dict[str, Any]]) -> None:
    resources = container(objects)["resources"]
    workers = int(config(objects)["SERVICE_WORKERS"])
    request_mb = quantity_bytes(resources["requests"]["memory"]) / 1e6
    limit_mb = quantity_bytes(resources["limits"]["memory"]) / 1e6
    assert request_mb >= workers * WORKER_RSS_MB + 100, "workers plus the supervisor and request bodies"
    assert limit_mb >= request_mb
    assert quantity_cpu(resources["limits"]["cpu"]) >= quantity_cpu(resources["requests"]["cpu"]) > 0


def test_service_hpa_pdb_and_network_policy_select_the_pods(objects: list[dict[str, Any]]) -> None:
    deployment = by_kind(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == APP_LABELS

    service = by_kind(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    http, grpc = service["spec"]["ports"]
    assert (http["port"], http["targetPort"], http["name"]) == (80, "http", "http")
    assert (grpc["port"], grpc["targetPort"], grpc["name"]) == (8001, "grpc", "grpc")

    hpa = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "modelserve"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2

    pdb = by_kind(objects, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "a node drain must be able to evict a pod"

    policy = by_kind(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": port["containerPort"], "protocol": "TCP"} for port in container(objects)["ports"]]


def test_service_monitor_scrapes_the_metrics_route(objects: list[dict[str, Any]]) -> None:
    monitor = by_kind(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = by_kind(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["path"] in get_routes()


def test_production_overlay(base_objects: list[dict[str, Any]], production_objects: list[dict[str, Any]]) -> None:
    base, prod = by_kind(base_objects, "Deployment"), by_kind(production_objects, "Deployment")
    assert prod["spec"]["replicas"] == 3 > base["spec"]["replicas"]
    assert container(production_objects)["image"] == "registry.example.com/modelserve:0.1.0"
    assert container(base_objects)["image"] == "modelserve:0.1.0"
    assert config(production_objects)["SERVICE_WORKERS"] == "2"
    assert config(base_objects)["SERVICE_WORKERS"] == "1"
    # The generated ConfigMap name carries a content hash: a config change rolls the pods.
    assert (
        by_kind(production_objects, "ConfigMap")["metadata"]["name"]
        != by_kind(base_objects, "ConfigMap")["metadata"]["name"]
    )
    assert by_kind(production_objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3
    assert by_kind(production_objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    namespace = by_kind(production_objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # The overlay keeps everything else of the base: probes and security are unchanged.
    for key in ("startupProbe", "livenessProbe", "readinessProbe", "securityContext", "lifecycle"):
        assert container(production_objects)[key] == container(base_objects)[key]
