"""The repository layout decisions that keep imports sane."""

from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stdlib_platform_module_is_not_shadowed() -> None:
    import platform

    assert callable(platform.system)
    assert "site-packages" not in (platform.__file__ or "")
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_every_package_imports() -> None:
    for name in ("modelyard_registry", "modelyard_agents", "modelyard_platform", "modelyard_web"):
        importlib.import_module(name)


def test_every_test_folder_is_a_package_and_none_is_named_platform() -> None:
    for folder in [ROOT / "tests", *(p for p in (ROOT / "tests").rglob("*") if p.is_dir())]:
        if folder.name in ("__pycache__",) or "artifacts" in folder.parts:
            continue
        assert (folder / "__init__.py").exists(), folder
        assert folder.name != "platform", folder
