"""infra/k8s: the security properties of the rendered overlays.

vLLM is a patched release, unprivileged, and requires an API key; NetworkPolicies deny by default
and allow exactly the flows Modelyard needs (evaluated here with the NetworkPolicy semantics, on
the pods the overlays really create); Prometheus scrapes with the metrics-only token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import K8S
from .kustomize import Resource, containers, pod_spec, render

NAMESPACE = "modelyard"
PATCHED_VLLM = (0, 11, 1)  # 0.11.0 and older: the advisories the issue names


def rendered(overlay: str) -> list[Resource]:
    return render(K8S / "overlays" / overlay)


def workloads(docs: list[Resource]) -> dict[str, Resource]:
    return {d["metadata"]["name"]: d for d in docs if pod_spec(d) is not None}


def template_labels(doc: Resource) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]
    return doc["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


# --- NetworkPolicy semantics (networking.k8s.io/v1), enough for what the manifests use ---------


@dataclass(frozen=True)
class Peer:
    """A pod (namespace + labels) or, with ``namespace`` None, an address outside the cluster."""

    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace or ""}


EXTERNAL = Peer(None)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not labels.items() >= selector.get("matchLabels", {}).items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return peer.namespace is None
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        if not selects(rule_peer["namespaceSelector"], peer.namespace_labels):
            return False
    elif peer.namespace != NAMESPACE:
        return False
    return selects(rule_peer.get("podSelector", {}), peer.labels)


def rule_allows(rule: dict[str, Any], peers_key: str, peer: Peer, port: int, proto: str) -> bool:
    peers = rule.get(peers_key)
    if peers is not None and not any(peer_matches(p, peer) for p in peers):
        return False
    ports = rule.get("ports")
    return ports is None or any(
        p.get("protocol", "TCP") == proto and ("port" not in p or p["port"] == port)
        for p in ports
    )


def direction_allows(policies: list[Resource], pod: Peer, direction: str, other: Peer,
                     port: int, proto: str) -> bool:
    """Isolated pods (selected by a policy of that direction) need a rule allowing the flow."""
    if pod.namespace != NAMESPACE:
        return True  # other namespaces are not ours to police here
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = [p["spec"] for p in policies
                if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"],
                                                                     pod.labels)]
    if not applying:
        return True
    return any(rule_allows(r, peers_key, other, port, proto)
               for spec in applying for r in spec.get(key, []))


def allowed(policies: list[Resource], src: Peer, dst: Peer, port: int, proto: str = "TCP"
            ) -> bool:
    return (direction_allows(policies, src, "Egress", dst, port, proto)
            and direction_allows(policies, dst, "Ingress", src, port, proto))


def policies_of(docs: list[Resource]) -> list[Resource]:
    return [d for d in docs if d["kind"] == "NetworkPolicy"]


def pod(docs: list[Resource], name: str) -> Peer:
    return Peer(NAMESPACE, template_labels(workloads(docs)[name]))


INGRESS_CONTROLLER = Peer("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = Peer("default", {"app": "anything"})
STRANGER_HERE = Peer(NAMESPACE, {"app": "debug-shell"})


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_network_policies_deny_by_default(overlay: str) -> None:
    policies = policies_of(rendered(overlay))
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "a default-deny policy for every pod in the namespace"
    # Every pod the overlay creates is isolated both ways.
    for name in workloads(rendered(overlay)):
        docs = rendered(overlay)
        assert not allowed(policies, STRANGER_HERE, pod(docs, name), 8000), name
        assert not allowed(policies, pod(docs, name), STRANGER_HERE, 8000), name
        assert not allowed(policies, pod(docs, name), EXTERNAL, 22), name
        assert allowed(policies, pod(docs, name), Peer("kube-system", {"k8s-app": "kube-dns"}),
                       53, "UDP"), f"{name} resolves names"


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_network_policies_allow_exactly_the_needed_flows(overlay: str) -> None:
    docs = rendered(overlay)
    policies = policies_of(docs)
    api, worker = pod(docs, "modelyard-api"), pod(docs, "modelyard-worker")
    (api_port,) = [p["containerPort"] for c in containers(workloads(docs)["modelyard-api"])
                   for p in c["ports"]]
    # api <- ingress controller; prometheus -> api metrics; nobody else reaches the API.
    assert allowed(policies, INGRESS_CONTROLLER, api, api_port)
    assert allowed(policies, PROMETHEUS, api, api_port)
    assert not allowed(policies, STRANGER, api, api_port)
    assert not allowed(policies, Peer("monitoring", {"app": "grafana"}), api, api_port)
    # Nothing reaches a worker.
    for src in (INGRESS_CONTROLLER, PROMETHEUS, api, STRANGER):
        assert not allowed(policies, src, worker, api_port)
    # api and worker -> PostgreSQL and Redis (managed, outside the cluster).
    for src in (api, worker, pod(docs, "modelyard-migrate")):
        assert allowed(policies, src, EXTERNAL, 5432)
        assert allowed(policies, src, EXTERNAL, 6379)
        assert not allowed(policies, src, EXTERNAL, 25)
    assert not allowed(policies, api, worker, 6379)
    exporter = pod(docs, "modelyard-queue-exporter")
    assert allowed(policies, PROMETHEUS, exporter, 9121)
    assert not allowed(policies, STRANGER, exporter, 9121)
    if overlay == "gpu":
        vllm = pod(docs, "vllm")
        for src in (api, worker, pod(docs, "modelyard-register-vllm"), PROMETHEUS):
            assert allowed(policies, src, vllm, 8000)
        for src in (INGRESS_CONTROLLER, STRANGER, STRANGER_HERE, exporter):
            assert not allowed(policies, src, vllm, 8000)
        assert not allowed(policies, vllm, api, api_port)
        assert not allowed(policies, vllm, EXTERNAL, 5432)


def test_policy_evaluation_can_fail() -> None:
    """The evaluator is not vacuous: without policies everything is open."""
    docs = [d for d in rendered("cpu") if d["kind"] != "NetworkPolicy"]
    assert allowed(policies_of(docs), STRANGER, pod(docs, "modelyard-worker"), 8000)


# --- vLLM -----------------------------------------------------------------------------------


def vllm_container(docs: list[Resource]) -> tuple[Resource, dict[str, Any]]:
    deployment = workloads(docs)["vllm"]
    (container,) = containers(deployment)
    return deployment, container


def test_vllm_is_a_patched_release() -> None:
    _, container = vllm_container(rendered("gpu"))
    m = re.fullmatch(r"vllm/vllm-openai:v(\d+)\.(\d+)\.(\d+)", container["image"])
    assert m, container["image"]
    assert tuple(int(g) for g in m.groups()) >= PATCHED_VLLM


def test_vllm_requires_an_api_key_from_the_secret(example_secret: Resource) -> None:
    docs = rendered("gpu")
    _, container = vllm_container(docs)
    args = container["args"]
    key_arg = args[args.index("--api-key") + 1]
    m = re.fullmatch(r"\$\((\w+)\)", key_arg)
    assert m, "the key comes from the environment, never a literal"
    (var,) = [v for v in container["env"] if v["name"] == m.group(1)]
    ref = var["valueFrom"]["secretKeyRef"]
    assert ref["name"] == example_secret["metadata"]["name"]
    assert ref.get("optional", False) is False, "a missing key stops the pod, not opens vLLM"
    assert ref["key"] in example_secret["stringData"]
    # The catalogue entry names it with the MODELYARD_SECRET_ prefix, the only names an
    # endpoint's api_key_env may use.
    assert var["name"].startswith("MODELYARD_SECRET_")
    (register,) = containers(workloads(docs)["modelyard-register-vllm"])
    assert f"--api-key-env {var['name']}" in " ".join(register["command"])


def test_vllm_runs_unprivileged_on_a_read_only_root() -> None:
    deployment, container = vllm_container(rendered("gpu"))
    spec = pod_spec(deployment)
    assert spec is not None
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert not ctx.get("privileged", False)
    # Every cache it writes is on a writable volume, not the read-only root (or /root).
    env = {v["name"]: v.get("value") for v in container["env"]}
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert "/tmp" in mounts
    for var in ("HOME", "HF_HOME", "VLLM_CACHE_ROOT", "XDG_CACHE_HOME", "TRITON_CACHE_DIR"):
        assert any((env[var] or "").startswith(m) for m in mounts), var


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_every_container_drops_capabilities(overlay: str) -> None:
    for name, doc in workloads(rendered(overlay)).items():
        spec = pod_spec(doc)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(doc):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name


def test_api_gets_the_metrics_token_from_the_secret(example_secret: Resource) -> None:
    (container,) = containers(workloads(rendered("cpu"))["modelyard-api"])
    (var,) = [v for v in container["env"] if v["name"] == "MODELYARD_METRICS_TOKEN"]
    assert var["valueFrom"]["secretKeyRef"]["key"] in example_secret["stringData"]
