"""docs/deploy.md stays true to the code: its commands, variables, metrics and KEDA example."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from .compose_env import variables
from .conftest import K8S, ROOT
from .contract import settings_env_names, yard_command_error
from .kustomize import load_documents, render

DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC) if lang == language]


def yard_commands() -> list[list[str]]:
    """Every `yard ...` in shell examples and inline code (after docker/kubectl prefixes)."""
    lines = [line for body in blocks("bash") for line in body.replace("\\\n", " ").splitlines()]
    lines += [span for span in re.findall(r"`([^`\n]+)`", _BLOCK.sub("", DOC))
              if re.search(r"(^|\s)yard\s", span) and "..." not in span]
    found = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if "yard" in words:
            found.append(words[words.index("yard"):])
    return found


def test_every_yard_command_in_the_docs_parses() -> None:
    commands = yard_commands()
    assert len(commands) >= 5
    for argv in commands:
        assert yard_command_error(argv) is None, argv


def test_modelyard_variables_in_the_docs_exist() -> None:
    """A MODELYARD_* name is a Settings field, or a Compose variable the docs tell you to set."""
    compose_vars = variables(yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text()))
    for name in set(re.findall(r"\bMODELYARD_[A-Z_]+\b", DOC)):
        assert name in settings_env_names() or name in compose_vars, name


def test_vllm_variables_in_the_docs_exist() -> None:
    compose_vars = variables(yaml.safe_load((ROOT / "infra" / "compose.yaml").read_text()))
    (vllm_config,) = load_documents(K8S / "vllm" / "config.yaml")
    known = compose_vars | set(vllm_config["data"]) | {"VLLM_API_KEY"}
    for name in set(re.findall(r"\b(?:VLLM|HEALTH)_[A-Z_]+\b", DOC)):
        assert name in known, name


def test_metric_names_in_the_docs_are_exported(exported: dict[str, set[str]]) -> None:
    histograms = {n.removesuffix("_bucket") for n in exported if n.endswith("_bucket")}
    for name in set(re.findall(r"(?<![\w.])modelyard_[a-z_]+(?![\w.])", DOC)):
        assert name in exported or name in histograms, name


def test_keda_example_scales_on_queued_jobs() -> None:
    """On the jobs waiting, not on the Celery list: it holds a wake-up or two, not a message per
    job, since a worker turn runs every queued job (#15)."""
    (scaled,) = [d for b in blocks("yaml") for d in yaml.safe_load_all(b)
                 if d.get("kind") == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == 'max(modelyard_jobs{status="queued"})'
    docs: list[dict[str, Any]] = render(K8S / "overlays" / "cpu")
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert scaled["metadata"]["namespace"] in namespaces
    # The HPA it replaces is its own file, so removing it from the base is one line.
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert "worker-hpa.yaml" in base["resources"] and "worker-hpa.yaml" in DOC


def test_documented_paths_exist() -> None:
    paths = set(re.findall(r"`((?:infra|tests/infra|bench|docs)/[\w./-]+)`", DOC))
    assert len(paths) >= 5
    for path in paths - {"infra/.env"}:  # .env is the operator's own file
        assert (ROOT / path).exists(), path
