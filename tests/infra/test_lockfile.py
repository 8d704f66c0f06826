"""requirements.lock (bootstrap, CI) and requirements.runtime.lock (the image): every dependency
pinned with hashes, satisfying pyproject, never a trojaned litellm (1.82.7 and 1.82.8 were
published with a credential stealer)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import ROOT

FULL, RUNTIME = ROOT / "requirements.lock", ROOT / "requirements.runtime.lock"
LOCKS = pytest.mark.parametrize("lock", [FULL, RUNTIME], ids=lambda p: p.name)
TROJANED_LITELLM = {Version("1.82.7"), Version("1.82.8")}
# Compiled from source by scripts/bootstrap.sh and infra/Dockerfile, pinned there by version.
BUILT_FROM_SOURCE = {"llama-cpp-python"}

_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=\S+)+)", re.M)


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    text = lock.read_text(encoding="utf-8")
    found: dict[str, tuple[Version, list[str]]] = {
        canonicalize_name(m.group(1)):
            (Version(m.group(2)), re.findall(r"--hash=(\S+)", m.group(3)))
        for m in _ENTRY.finditer(text)
    }
    # Every requirement line is one of those: nothing unpinned or unhashed slipped in.
    lines = [ln for ln in text.splitlines() if ln and not ln[0].isspace() and ln[0] != "#"]
    assert len(lines) == len(found), set(lines) - {ln for ln in lines if "==" in ln}
    return found


def declared(lock: Path = FULL) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    extra = [*extras["dev"], *extras["models"]] if lock == FULL else []
    return [Requirement(r) for r in [*project["dependencies"], *extra]]


@LOCKS
def test_every_entry_is_pinned_with_sha256_hashes(lock: Path) -> None:
    locked = pins(lock)
    assert len(locked) > 50
    for name, (_, hashes) in locked.items():
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


@LOCKS
def test_the_lock_satisfies_pyproject(lock: Path) -> None:
    locked = pins(lock)
    for req in declared(lock):
        name = canonicalize_name(req.name)
        if name in BUILT_FROM_SOURCE:
            assert name not in locked
            continue
        if req.marker is not None and not req.marker.evaluate(
            {"sys_platform": "linux", "python_version": "3.11", "platform_machine": "x86_64"}
        ):
            continue
        assert name in locked, f"{req} is not locked"
        assert req.specifier.contains(locked[name][0], prereleases=True), (str(req), locked[name])


def test_the_runtime_lock_is_the_full_lock_minus_tools() -> None:
    full, runtime = pins(FULL), pins(RUNTIME)
    assert set(runtime) < set(full)
    assert all(runtime[name][0] == full[name][0] for name in runtime)
    assert not {"pytest", "mypy", "ruff", "playwright"} & set(runtime)


@LOCKS
def test_trojaned_litellm_is_excluded(lock: Path) -> None:
    version, _ = pins(lock)["litellm"]
    assert version not in TROJANED_LITELLM
    (spec,) = [r for r in declared() if canonicalize_name(r.name) == "litellm"]
    for bad in TROJANED_LITELLM:
        assert not spec.specifier.contains(bad), f"pyproject still allows litellm {bad}"
    assert spec.specifier.contains(version)


def test_bootstrap_and_image_install_from_the_locks() -> None:
    """Nothing is resolved at install time: the lock, hash-checked, without dependencies."""
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    assert re.search(r"install --require-hashes --no-deps -r requirements\.lock\n", bootstrap)
    assert re.search(r"install --no-deps -e \.\n", bootstrap)
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY pyproject.toml README.md requirements.runtime.lock /src/" in dockerfile
    assert "pip install --require-hashes --no-deps -r /src/requirements.runtime.lock" in dockerfile
    installs = re.findall(r"pip install ([^\n\\]*)", bootstrap + dockerfile)
    for args in installs:
        # Every other install is the llama.cpp wheel built here or the project itself.
        assert ("--require-hashes" in args or "--no-deps" in args), args
