"""The public surface is explicit: everything in __all__ exists, and nothing public is missing."""

from __future__ import annotations

import modelyard_registry


def test_all_names_exist_and_public_classes_are_exported() -> None:
    for name in modelyard_registry.__all__:
        assert hasattr(modelyard_registry, name), name
    public = {
        name for name, value in vars(modelyard_registry).items()
        if not name.startswith("_") and isinstance(value, type)
    }
    assert public <= set(modelyard_registry.__all__)
