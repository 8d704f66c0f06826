"""A small kustomize renderer for the subset infra/k8s uses, so overlays are tested as applied.

No kustomize binary exists here.  This renders ``resources`` (files inside the kustomization root,
or other kustomization directories), ``patches`` (strategic-merge patch files), ``images`` and
``namespace`` the way kustomize does; any other kustomization key is refused, so a manifest
change that this renderer would get wrong fails loudly instead of being tested wrongly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "IngressClass", "PriorityClass", "CustomResourceDefinition"}

Resource = dict[str, Any]


class KustomizeError(Exception):
    pass


def load_documents(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def resource_id(doc: Resource) -> tuple[str, str, str]:
    meta = doc.get("metadata", {})
    return doc["kind"], meta.get("namespace", ""), meta["name"]


def pod_spec(doc: Resource) -> dict[str, Any] | None:
    """The pod template of a workload, or None for kinds without one."""
    kind = doc["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if kind == "Pod":
        return doc["spec"]  # type: ignore[no-any-return]
    return None


def containers(doc: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def strategic_merge(base: Any, patch: Any) -> Any:
    """Maps merge per key; lists of maps that all carry ``name`` merge by name; others replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if isinstance(key, str) and key.startswith("$"):
                raise KustomizeError(f"patch directive {key} is not supported")
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in [*base, *patch])
    ):
        merged_list = list(base)
        index = {item["name"]: i for i, item in enumerate(merged_list)}
        for item in patch:
            if item["name"] in index:
                i = index[item["name"]]
                merged_list[i] = strategic_merge(merged_list[i], item)
            else:
                merged_list.append(item)
        return merged_list
    return copy.deepcopy(patch)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _image_name(image: str) -> str:
    """The name part of an image reference (no tag, no digest), as kustomize matches it."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def render(directory: Path) -> list[Resource]:
    """Everything ``kubectl apply -k directory`` would send, in order."""
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory} has no kustomization.yaml")
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: keys {sorted(unknown)} are not rendered by this test")

    docs: list[Resource] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(render(path))
        elif path.is_file():
            if not _inside(path, directory):
                raise KustomizeError(f"{kfile}: {entry} is outside the kustomization root")
            docs.extend(load_documents(path))
        else:
            raise KustomizeError(f"{kfile}: resource {entry} does not exist")

    seen: set[tuple[str, str, str]] = set()
    for doc in docs:
        rid = resource_id(doc)
        if rid in seen:
            raise KustomizeError(f"{kfile}: duplicate resource {rid}")
        seen.add(rid)

    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{kfile}: only `path` strategic-merge patches are rendered")
        path = directory / patch_entry["path"]
        if not _inside(path, directory):
            raise KustomizeError(f"{kfile}: patch {path} is outside the kustomization root")
        for patch in load_documents(path):
            key = (patch["kind"], patch["metadata"]["name"])
            targets = [
                i for i, doc in enumerate(docs) if (doc["kind"], doc["metadata"]["name"]) == key
            ]
            if len(targets) != 1:
                raise KustomizeError(f"{path}: patch matches {len(targets)} resources, not one")
            docs[targets[0]] = strategic_merge(docs[targets[0]], patch)

    for image in spec.get("images", []):
        matched = False
        for doc in docs:
            for container in containers(doc):
                if _image_name(container["image"]) == image["name"]:
                    matched = True
                    name = image.get("newName", image["name"])
                    tag = image.get("newTag")
                    container["image"] = f"{name}:{tag}" if tag else name
        if not matched:
            raise KustomizeError(f"{kfile}: image {image['name']} matches no container")

    namespace = spec.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = namespace
    return docs
