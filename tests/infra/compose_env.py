"""Docker Compose variable interpolation, as `docker compose config` does it, for tests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    pass


def interpolate(value: Any, env: Mapping[str, str], *, strict: bool = True) -> Any:
    """Substitute ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$ everywhere in ``value``.

    With ``strict``, a variable that is unset and has no default raises ``MissingVariable``
    (compose would silently substitute an empty string).
    """
    if isinstance(value, dict):
        return {k: interpolate(v, env, strict=strict) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, strict=strict) for v in value]
    if not isinstance(value, str):
        return value

    def replace(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            use_default = current is None or (op == ":-" and current == "")
            return arg if use_default else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in (":+", "+"):
            return arg if current else ""
        if current is None:
            if strict:
                raise MissingVariable(f"{name} has no default")
            return ""
        return str(current)

    return _VAR.sub(replace, value)


def variables(value: Any) -> set[str]:
    """Names of every variable referenced anywhere in ``value``."""
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value)) if value else set()
    if not isinstance(value, str):
        return set()
    return {m.group("braced") or m.group("named") for m in _VAR.finditer(value)
            if not m.group("escaped")}
