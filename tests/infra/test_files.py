"""Every YAML and JSON file under infra/ parses; the helpers that check them can fail."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import INFRA, K8S, ROOT
from .contract import env_var_error, shell_commands, yard_command_error
from .kustomize import KustomizeError, render

YAML_FILES = sorted([*INFRA.rglob("*.yaml"), *INFRA.rglob("*.yml")])
JSON_FILES = sorted(INFRA.rglob("*.json"))


def test_infra_has_the_files_the_issue_names() -> None:
    for name in ("Dockerfile", "compose.yaml", "prometheus/prometheus.yml"):
        assert (INFRA / name).is_file(), name
    assert list((INFRA / "grafana" / "dashboards").glob("*.json"))
    assert (K8S / "base" / "kustomization.yaml").is_file()
    assert (ROOT / "docs" / "deploy.md").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_yaml_parses(path) -> None:  # type: ignore[no-untyped-def]
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_json_parses(path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


def test_yaml_files_were_found() -> None:
    assert len(YAML_FILES) >= 10 and JSON_FILES


def test_command_checker_rejects_what_the_cli_would_reject() -> None:
    assert yard_command_error(["yard", "models", "pull", "smollm2-135m"]) is None
    assert "no command 'pul'" in (yard_command_error(["yard", "models", "pul", "x"]) or "")
    typo = ["yard", "models", "add", "x", "--endpont", "u"]
    assert "No such option" in (yard_command_error(typo) or "")
    assert "Missing argument" in (yard_command_error(["yard", "models", "pull"]) or "")
    assert yard_command_error(["yard", "models", "add", "x", "--price-in", "cheap"]) is not None
    assert yard_command_error(["yard", "models"]) is not None


def test_env_checker_knows_settings_and_rejects_strangers() -> None:
    assert env_var_error("DATABASE_URL") is None
    assert env_var_error("MODELYARD_RAM_BUDGET_MB") is None
    assert env_var_error("MODELYARD_RAM_BUDGET") is not None
    assert env_var_error("SOME_TYPO_URL") is not None
    assert env_var_error("VLLM_API_KEY", allowed_extra={"VLLM_API_KEY"}) is None


def test_shell_commands_splits_and_drops_redirections() -> None:
    script = 'yard models show "a b" >/dev/null 2>&1 || yard models add x; echo done && true'
    assert shell_commands(script) == [
        ["yard", "models", "show", "a b"],
        ["yard", "models", "add", "x"],
        ["echo", "done"],
        ["true"],
    ]


def test_renderer_refuses_what_it_cannot_render(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "kustomization.yaml").write_text("resources: [../x.yaml]\nreplicas: []\n")
    with pytest.raises(KustomizeError, match="replicas"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [../x.yaml]\n")
    (tmp_path.parent / "x.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(KustomizeError, match="outside the kustomization root"):
        render(tmp_path)
