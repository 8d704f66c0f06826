"""``python -m modelyard_platform ...`` is ``yard ...`` (how `yard up` starts its children)."""

from modelyard_registry.cli.app import main

main()
