"""infra/compose.yaml: valid Compose, scalable workers, commands and settings that really exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import check_jsonschema
import jsonschema
import pytest
import yaml
from modelyard_platform.jobs.celery_app import QUEUE

from .compose_env import MissingVariable, interpolate, variables
from .conftest import INFRA
from .contract import (
    api_key_envs,
    env_var_error,
    settings_from,
    shell_variables,
    yard_command_error,
    yard_invocations,
)

COMPOSE_SCHEMA = (
    Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
)


def modelyard_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("modelyard")
    }


def argv_of(service: dict[str, Any]) -> list[str]:
    """What the container runs: entrypoint (tini in the image when not overridden) + command."""
    entrypoint = service.get("entrypoint") or []
    command = service.get("command") or []
    assert isinstance(entrypoint, list) and isinstance(command, list), "use the list form"
    return [str(w) for w in [*entrypoint, *command]]


def test_validates_against_the_compose_spec(compose_raw: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(compose_raw, schema)
    # The schema would also take the file after interpolation (numbers stay valid, etc.).
    jsonschema.validate(interpolate(compose_raw, {}), schema)


def test_every_variable_has_a_default(compose_raw: dict[str, Any]) -> None:
    assert variables(compose_raw), "expected configurable variables"
    interpolate(compose_raw, {}, strict=True)  # raises MissingVariable when one has no default
    with pytest.raises(MissingVariable):
        interpolate({"x": "${NOT_DEFAULTED}"}, {}, strict=True)


def test_services_the_issue_names(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker", "health", "redis", "redis-exporter", "postgres", "prometheus",
                 "vllm", "vllm-register"):
        assert name in services, name
    assert services["vllm"]["profiles"] == ["gpu"]
    assert services["vllm-register"]["profiles"] == ["gpu"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert not any(":" in str(v) for v in worker.get("volumes", [])), "no per-host bind mounts"
    assert argv_of(worker) == ["yard", "worker"]
    assert worker["stop_grace_period"]


def test_postgres_and_redis_keep_their_data_in_volumes(compose: dict[str, Any]) -> None:
    volumes = compose["volumes"]
    for svc, path in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        mounts = compose["services"][svc]["volumes"]
        (mount,) = [m for m in mounts if m.endswith(":" + path)]
        assert mount.split(":")[0] in volumes
        assert compose["services"][svc]["healthcheck"]["test"]


def test_vllm_is_the_official_server_with_a_gpu_reservation(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert int(device["count"]) >= 1
    command = [str(w) for w in vllm["command"]]
    assert "--model" in command and "--served-model-name" in command
    raw = yaml.safe_load((INFRA / "compose.yaml").read_text(encoding="utf-8"))["services"]["vllm"]
    assert {"VLLM_MODEL", "VLLM_GPU_COUNT"} <= variables(raw), "model and GPUs are variables"


def test_vllm_registration_points_at_the_vllm_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    register = services["vllm-register"]
    assert register["depends_on"]["vllm"]["condition"] == "service_healthy"
    env = register["environment"]
    (show, add) = yard_invocations(argv_of(register), env)
    assert show[:3] == ["yard", "models", "show"] and add[:3] == ["yard", "models", "add"]
    assert show[3] == add[3], "registration is skipped only when that very name exists"
    endpoint = urlparse(add[add.index("--endpoint") + 1])
    vllm_cmd = [str(w) for w in services["vllm"]["command"]]
    assert endpoint.hostname == "vllm"
    assert str(endpoint.port) == vllm_cmd[vllm_cmd.index("--port") + 1]
    assert endpoint.path == "/v1"
    served = vllm_cmd[vllm_cmd.index("--served-model-name") + 1]
    assert add[add.index("--served-name") + 1] == served
    assert add[add.index("--api-key-env") + 1] in services["vllm"]["environment"]


def test_every_yard_command_parses(compose: dict[str, Any]) -> None:
    found = 0
    for name, svc in modelyard_services(compose).items():
        env = {k: str(v) for k, v in svc.get("environment", {}).items()}
        invocations = yard_invocations(argv_of(svc), env)
        assert invocations, f"{name} runs no yard command"
        for argv in invocations:
            assert yard_command_error(argv) is None, (name, argv)
            found += 1
    assert found >= 5


def test_env_vars_are_settings_or_declared(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = modelyard_services(compose)
    all_commands = [
        argv for svc in services.values()
        for argv in yard_invocations(argv_of(svc), svc.get("environment", {}))
    ]
    key_envs = api_key_envs(all_commands)
    for name, svc in services.items():
        env = {k: str(v) for k, v in svc.get("environment", {}).items()}
        script_vars = shell_variables(" ".join(argv_of(svc)))
        for var in env:
            assert env_var_error(var, allowed_extra=key_envs | script_vars) is None, (name, var)
        settings = settings_from(env, monkeypatch)
        assert settings.effective_database_url.startswith("postgresql://")
        assert (settings.redis_url or "").startswith("redis://")


def test_database_and_redis_urls_point_at_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = services["postgres"]["environment"]
    for name, svc in modelyard_services(compose).items():
        db = urlparse(svc["environment"]["DATABASE_URL"])
        assert (db.hostname, db.username, db.password, db.path.lstrip("/")) == (
            "postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]
        ), name
        assert urlparse(svc["environment"]["REDIS_URL"]).hostname == "redis"


def test_api_health_check_and_port(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    argv = argv_of(api)
    port = argv[argv.index("--port") + 1]
    assert any(p.endswith(":" + port) for p in api["ports"])
    assert f"127.0.0.1:{port}/readyz" in " ".join(api["healthcheck"]["test"])


def prometheus_jobs(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    prom = compose["services"]["prometheus"]
    (mount,) = [m for m in prom["volumes"] if m.endswith("prometheus.yml:ro")]
    config = yaml.safe_load((INFRA / mount.split(":")[0]).read_text(encoding="utf-8"))
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_prometheus_scrapes_the_api(compose: dict[str, Any]) -> None:
    job = prometheus_jobs(compose)["modelyard-api"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    api = argv_of(compose["services"]["api"])
    assert sd["names"] == ["api"] and str(sd["port"]) == api[api.index("--port") + 1]


def test_queue_depth_is_exported_for_the_real_queue(compose: dict[str, Any]) -> None:
    """redis_exporter watches the Redis list Celery uses as the queue, in the broker's db."""
    exporter = compose["services"]["redis-exporter"]
    env = exporter["environment"]
    assert urlparse(env["REDIS_ADDR"]).hostname == "redis"
    broker = urlparse(compose["services"]["worker"]["environment"]["REDIS_URL"])
    db = broker.path.lstrip("/") or "0"
    assert env["REDIS_EXPORTER_CHECK_SINGLE_KEYS"] == f"db{db}={QUEUE}"
    (static,) = prometheus_jobs(compose)["redis"]["static_configs"]
    assert static["targets"] == ["redis-exporter:9121"]


def test_remote_models_are_probed_periodically(compose: dict[str, Any]) -> None:
    health = compose["services"]["health"]
    argv = argv_of(health)
    assert argv[:2] == ["sh", "-c"] and argv[2].startswith("while true; do ")
    (check,) = yard_invocations(argv, health["environment"])
    assert check == ["yard", "models", "check"]
    assert "sleep" in argv[2] and health["restart"] == "unless-stopped"


def test_grafana_mounts_exist(compose: dict[str, Any]) -> None:
    for mount in compose["services"]["grafana"]["volumes"]:
        assert (INFRA / mount.split(":")[0]).exists(), mount
