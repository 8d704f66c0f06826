"""infra/compose.yaml: Grafana without anonymous access or admin/admin, Prometheus with the
metrics-only token, vLLM patched, confined and refusing to start without its API key."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import yaml
from modelyard_registry.settings import Settings

from .conftest import INFRA

PATCHED_VLLM = (0, 11, 1)


def secret_files(compose: dict[str, Any], service: str) -> dict[str, str]:
    """/run/secrets/<name> -> the file it comes from, for the secrets a service mounts."""
    top = compose["secrets"]
    return {f"/run/secrets/{name}": top[name]["file"] for name in compose["services"][service]
            .get("secrets", [])}


def test_grafana_has_no_anonymous_access_and_no_default_password(
    compose: dict[str, Any]
) -> None:
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env, "a password in the environment has a default"
    source = secret_files(compose, "grafana")[env["GF_SECURITY_ADMIN_PASSWORD__FILE"]]
    assert source.startswith("./secrets/")
    ignored = (INFRA / "secrets" / ".gitignore").read_text(encoding="utf-8").split()
    assert "*" in ignored, "real secrets are never committed"
    assert env.get("GF_USERS_ALLOW_SIGN_UP") == "false"


def test_prometheus_scrapes_with_the_metrics_token(compose: dict[str, Any]) -> None:
    prom = compose["services"]["prometheus"]
    (mount,) = [m for m in prom["volumes"] if m.endswith("prometheus.yml:ro")]
    config = yaml.safe_load((INFRA / mount.split(":")[0]).read_text(encoding="utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "modelyard-api"]
    auth = job["authorization"]
    assert auth["type"] == "Bearer" and "credentials" not in auth
    source = secret_files(compose, "prometheus")[auth["credentials_file"]]
    assert source == "./secrets/metrics-token"
    # The API accepts that token as MODELYARD_METRICS_TOKEN (a real setting).
    api_env = compose["services"]["api"]["environment"]
    assert "MODELYARD_METRICS_TOKEN" in api_env
    assert "metrics_token" in Settings.model_fields
    # Only the API holds it.
    for name, svc in compose["services"].items():
        if name != "api":
            assert "MODELYARD_METRICS_TOKEN" not in svc.get("environment", {}), name


def test_vllm_is_patched_and_confined(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    m = re.fullmatch(r"vllm/vllm-openai:v(\d+)\.(\d+)\.(\d+)", vllm["image"])
    assert m and tuple(int(g) for g in m.groups()) >= PATCHED_VLLM, vllm["image"]
    assert vllm["cap_drop"] == ["ALL"]
    assert vllm["read_only"] is True
    assert "no-new-privileges:true" in vllm["security_opt"]
    assert "ipc" not in vllm and not vllm.get("privileged", False)
    for var in ("HOME", "HF_HOME", "VLLM_CACHE_ROOT", "XDG_CACHE_HOME", "TRITON_CACHE_DIR"):
        path = vllm["environment"][var]
        mounts = [v.split(":")[1] for v in vllm["volumes"]] + vllm["tmpfs"]
        assert any(path.startswith(m) for m in mounts), var


def run_vllm_entrypoint(compose: dict[str, Any], tmp_path: Path, key: str
                        ) -> subprocess.CompletedProcess[str]:
    """The service's real entrypoint and command, with `vllm` an executable printing its argv."""
    fake = tmp_path / "vllm"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    vllm = compose["services"]["vllm"]
    argv = [str(w) for w in [*vllm["entrypoint"], *vllm["command"]]]
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "MODELYARD_SECRET_VLLM_API_KEY": key}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def test_vllm_refuses_to_start_without_its_api_key(compose: dict[str, Any],
                                                   tmp_path: Path) -> None:
    refused = run_vllm_entrypoint(compose, tmp_path, "")
    assert refused.returncode == 64 and "MODELYARD_SECRET_VLLM_API_KEY" in refused.stderr
    assert refused.stdout == ""
    started = run_vllm_entrypoint(compose, tmp_path, "k3y with space")
    assert started.returncode == 0, started.stderr
    argv = started.stdout.splitlines()
    assert argv[0] == "serve"
    assert argv[argv.index("--api-key") + 1] == "k3y with space"
    assert "--served-model-name" in argv


def test_vllm_registration_names_a_modelyard_secret(compose: dict[str, Any]) -> None:
    services = compose["services"]
    script = " ".join(str(w) for w in services["vllm-register"]["command"])
    name = script.split("--api-key-env ")[1].split()[0]
    assert name.startswith("MODELYARD_SECRET_")
    assert name in services["vllm"]["environment"]
    assert name in services["worker"]["environment"] and name in services["api"]["environment"]
