"""The Grafana dashboard queries metrics the app really exports, with labels they really carry."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from modelyard_platform.jobs.celery_app import QUEUE

from .conftest import INFRA

DASHBOARDS = sorted((INFRA / "grafana" / "dashboards").glob("*.json"))
# Exported by redis_exporter (infra/compose.yaml, infra/k8s/base/queue-exporter.yaml), not the app.
EXTERNAL = {"redis_key_size": {"db", "key"}}

_METRIC = re.compile(r"\b((?:modelyard|redis)_[a-z_]+)\b")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"([^\"]*)\"")
_SELECTOR = re.compile(r"\b((?:modelyard|redis)_[a-z_]+)\{([^}]*)\}")


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_exported_metrics(path, exported: dict[str, set[str]]) -> None:  # type: ignore[no-untyped-def]
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    known = {**exported, **EXTERNAL}
    queries = exprs(dashboard)
    assert queries
    for expr in queries:
        metrics = set(_METRIC.findall(expr))
        assert metrics, expr
        for metric in metrics:
            assert metric in known, f"{metric} is not exported (query: {expr})"
        labels = set().union(*(known[m] for m in metrics))
        used = {label.strip() for group in _BY.findall(expr) for label in group.split(",")}
        used |= {name for _, body in _SELECTOR.findall(expr) for name, _ in _MATCHER.findall(body)}
        assert used - {""} <= labels, f"labels {used - labels} not on {metrics}: {expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_what_the_issue_names(path) -> None:  # type: ignore[no-untyped-def]
    queries = " ".join(exprs(json.loads(path.read_text(encoding="utf-8"))))
    for metric in ("modelyard_http_requests_total", "modelyard_jobs",
                   "modelyard_model_tokens_total", "modelyard_model_cost_usd_total"):
        assert metric in queries, metric
    # Queue depth is the jobs queued in the database (the Celery list holds wake-ups only, one
    # or two however long the backlog); the list itself is still shown beside it.
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    depth = [p for p in dashboard["panels"] if p["title"].startswith("Queue depth (jobs")]
    assert [t["expr"] for p in depth for t in p["targets"]] == [
        'max(modelyard_jobs{status="queued"})']
    assert f'redis_key_size{{key="{QUEUE}"}}' in queries


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_portable(path) -> None:  # type: ignore[no-untyped-def]
    """Panels use the dashboard's datasource variable, so it imports into any Grafana."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${" + variable["name"] + "}", panel["title"]
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_provisioning_loads_the_mounted_dashboards(compose: dict[str, Any]) -> None:
    provider_file = INFRA / "grafana" / "provisioning" / "dashboards" / "modelyard.yaml"
    (provider,) = yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    (dashboards,) = [m for m in mounts if m.split(":")[0] == "./grafana/dashboards"]
    assert dashboards.split(":")[1] == provider["options"]["path"]
    datasource_file = INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
    (source,) = yaml.safe_load(datasource_file.read_text(encoding="utf-8"))["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
