"""infra/k8s: rendered overlays validate against the Kubernetes schemas and hang together."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from .conftest import OVERLAYS
from .contract import (
    api_key_envs,
    env_var_error,
    expand,
    settings_from,
    shell_variables,
    yard_command_error,
    yard_invocations,
)
from .kustomize import Resource, containers, pod_spec, render

# The oldest Kubernetes minor still widely supported by managed services, and the newest schema.
K8S_VERSIONS = ["1.30.0", latest_version()]

Rendered = tuple[str, list[Resource]]


def by_kind(docs: list[Resource], kind: str) -> dict[str, Resource]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def is_modelyard(container: dict[str, Any]) -> bool:
    return "/modelyard:" in container["image"] or container["image"].startswith("modelyard:")


def container_env(
    container: dict[str, Any], docs: list[Resource], secret: Resource
) -> dict[str, str]:
    """The environment a container starts with (Secret values from secret.example.yaml)."""
    config_maps = by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
            env.update(secret["stringData"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref:
            env[var["name"]] = config_maps[ref["configMapKeyRef"]["name"]]["data"][
                ref["configMapKeyRef"]["key"]
            ]
        else:
            env[var["name"]] = secret["stringData"][ref["secretKeyRef"]["key"]]
    return env


def all_containers(docs: list[Resource]) -> list[tuple[Resource, dict[str, Any]]]:
    return [(doc, c) for doc in docs for c in containers(doc)]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_resource_validates_strictly(overlay: Rendered, version: str) -> None:
    name, docs = overlay
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_example_secret_validates(example_secret: Resource) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(example_secret, version, strict=True)
    assert {"DATABASE_URL", "REDIS_URL"} <= set(example_secret["stringData"])


def test_validation_can_fail() -> None:
    bad = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
           "spec": {"replicas": "two", "selector": {}, "template": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_cpu_overlay_has_what_the_issue_names(overlay: Rendered) -> None:
    _, docs = overlay
    deployments = by_kind(docs, "Deployment")
    assert {"modelyard-api", "modelyard-worker"} <= set(deployments)
    assert "modelyard-api" in by_kind(docs, "Service")
    assert by_kind(docs, "Ingress")
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "modelyard-worker"
    worker_labels = deployments["modelyard-worker"]["spec"]["template"]["metadata"]["labels"]
    pdbs = by_kind(docs, "PodDisruptionBudget").values()
    assert any(
        p["spec"]["selector"]["matchLabels"].items() <= worker_labels.items() for p in pdbs
    )
    assert "modelyard-migrate" in by_kind(docs, "Job")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "modelyard"
    }


def test_gpu_overlay_runs_vllm_on_gpus(overlay: Rendered) -> None:
    name, docs = overlay
    if name != "gpu":
        assert "vllm" not in by_kind(docs, "Deployment")
        return
    vllm = by_kind(docs, "Deployment")["vllm"]
    assert vllm["spec"]["replicas"] == 2
    (container,) = containers(vllm)
    assert container["image"].startswith("vllm/vllm-openai:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "vllm" in by_kind(docs, "Service")
    assert "modelyard-register-vllm" in by_kind(docs, "Job")


def test_selectors_ports_and_targets_resolve(overlay: Rendered) -> None:
    _, docs = overlay
    workloads = [d for d in docs if d["kind"] == "Deployment"]
    for deployment in workloads:
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
    for service in by_kind(docs, "Service").values():
        selected = [
            d for d in workloads
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        port_names = {p["name"] for c in containers(selected[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
    services = by_kind(docs, "Service")
    for ingress in by_kind(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in ports
    deployments = by_kind(docs, "Deployment")
    for hpa in by_kind(docs, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert any(
            pdb["spec"]["selector"]["matchLabels"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in workloads
        ), pdb["metadata"]["name"]


def test_secret_and_config_references_exist(overlay: Rendered, example_secret: Resource) -> None:
    _, docs = overlay
    config_maps = by_kind(docs, "ConfigMap")
    secret_name = example_secret["metadata"]["name"]
    for doc, container in all_containers(docs):
        for var in container.get("env", []):
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == secret_name
                assert ref["secretKeyRef"]["key"] in example_secret["stringData"]
            if "configMapKeyRef" in ref:
                key = ref["configMapKeyRef"]
                assert key["key"] in config_maps[key["name"]]["data"], doc["metadata"]["name"]
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps


def test_overlay_sets_the_image(overlay: Rendered) -> None:
    _, docs = overlay
    images = {c["image"] for _, c in all_containers(docs) if is_modelyard(c)}
    assert images and all(i.startswith("ghcr.io/") and not i.endswith(":latest") for i in images)


def test_every_yard_command_parses(overlay: Rendered, example_secret: Resource) -> None:
    name, docs = overlay
    found = 0
    for doc, container in all_containers(docs):
        if not is_modelyard(container):
            continue
        env = container_env(container, docs, example_secret)
        argv = [expand(w, env, k8s=True) for w in [*container.get("command", []),
                                                   *container.get("args", [])]]
        invocations = yard_invocations(argv, env)
        assert invocations, f"{doc['metadata']['name']} runs no yard command"
        for yard_argv in invocations:
            assert yard_command_error(yard_argv) is None, (name, yard_argv)
            found += 1
    assert found >= 4


def test_env_vars_are_settings_or_declared(
    overlay: Rendered, example_secret: Resource, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, docs = overlay
    # A key named by `--api-key-env` in any overlay may be given to every Modelyard pod: the
    # catalogue is shared, so any pod may call that endpoint.
    commands = []
    for rendered in (render(path) for path in OVERLAYS):
        for _, container in all_containers(rendered):
            if is_modelyard(container):
                env = container_env(container, rendered, example_secret)
                commands += yard_invocations(container.get("command", []), env)
    key_envs = api_key_envs(commands)
    assert key_envs == {"MODELYARD_SECRET_VLLM_API_KEY"}
    for doc, container in all_containers(docs):
        if not is_modelyard(container):
            continue
        env = container_env(container, docs, example_secret)
        script_vars = shell_variables(" ".join(container.get("command", [])))
        for var in env:
            error = env_var_error(var, allowed_extra=key_envs | script_vars)
            assert error is None, (doc["metadata"]["name"], error)
        settings = settings_from(env, monkeypatch)
        assert settings.effective_database_url.startswith("postgresql://")


def test_vllm_registration_points_at_the_vllm_service(
    overlay: Rendered, example_secret: Resource
) -> None:
    name, docs = overlay
    if name != "gpu":
        return
    job = by_kind(docs, "Job")["modelyard-register-vllm"]
    (container,) = containers(job)
    env = container_env(container, docs, example_secret)
    (show, add) = yard_invocations(container["command"], env)
    assert show[3] == add[3]
    endpoint = urlparse(add[add.index("--endpoint") + 1])
    vllm_service = by_kind(docs, "Service")[endpoint.hostname or ""]
    assert endpoint.port in {p["port"] for p in vllm_service["spec"]["ports"]}
    (vllm,) = containers(by_kind(docs, "Deployment")["vllm"])
    vllm_env = container_env(vllm, docs, example_secret)
    served = expand(vllm["args"][vllm["args"].index("--served-model-name") + 1], vllm_env,
                    k8s=True)
    assert add[add.index("--served-name") + 1] == served
    assert add[add.index("--api-key-env") + 1] in vllm_env


def test_pods_are_sized_and_unprivileged(overlay: Rendered, example_secret: Resource) -> None:
    _, docs = overlay
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for container in containers(doc):
            resources = container["resources"]
            assert resources["requests"]["memory"] and resources["limits"]["memory"]
            assert resources["requests"]["cpu"]
            if is_modelyard(container):
                assert spec["securityContext"]["runAsNonRoot"] is True
                assert container["securityContext"]["allowPrivilegeEscalation"] is False


def _quantity(value: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


# Resident memory of one Modelyard Python process before any model is loaded (imports, Celery,
# connections); bench/scale_out.py measures ~145 MB, this leaves headroom.
PROCESS_OVERHEAD_MIB = 256


@pytest.mark.parametrize("deployment", ["modelyard-api", "modelyard-worker"])
def test_threads_and_ram_budget_fit_the_pod(
    overlay: Rendered, example_secret: Resource, monkeypatch: pytest.MonkeyPatch,
    deployment: str,
) -> None:
    """Every process that runs llama.cpp: threads within the CPU request, models within RAM.

    A worker pod runs CONCURRENCY prefork processes, each with its own model pool (RAM budget)
    and N_THREADS threads, plus the Celery main process; the API is one process.  Left unset,
    n_threads would default to every core of the node, not the pod's share.
    """
    _, docs = overlay
    (container,) = containers(by_kind(docs, "Deployment")[deployment])
    env = container_env(container, docs, example_secret)
    assert "MODELYARD_N_THREADS" in env and "MODELYARD_RAM_BUDGET_MB" in env
    settings = settings_from(env, monkeypatch)
    is_worker = container["command"][:2] == ["yard", "worker"]
    processes = settings.worker_concurrency if is_worker else 1
    resources = container["resources"]
    assert processes * settings.n_threads <= _quantity(resources["requests"]["cpu"])
    needed_mib = processes * (settings.ram_budget_mb + PROCESS_OVERHEAD_MIB)
    if is_worker:
        needed_mib += PROCESS_OVERHEAD_MIB  # the Celery main process
    assert needed_mib * 2**20 <= _quantity(resources["limits"]["memory"])
    assert _quantity(resources["requests"]["memory"]) <= _quantity(resources["limits"]["memory"])


def test_modelyard_pods_run_as_the_image_user(overlay: Rendered) -> None:
    """runAsUser/runAsGroup are the ids the image creates and owns MODELYARD_HOME with."""
    from .test_dockerfile import DOCKERFILE, FINAL_STAGE

    (user,) = [i.args for i in DOCKERFILE if i.stage == FINAL_STAGE and i.keyword == "USER"]
    uid, gid = (int(x) for x in user.split(":"))
    _, docs = overlay
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None and any(is_modelyard(c) for c in containers(doc)):
            context = spec["securityContext"]
            assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid), doc["metadata"]
