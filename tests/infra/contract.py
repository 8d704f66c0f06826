"""The contract between infra/ and the code: commands the real `yard` accepts, settings it reads.

Container commands are parsed by the real command tree of `yard` (built from the typer app),
so a renamed command, a renamed option or a missing argument in any manifest breaks a test.
Environment variables are checked against the fields of the real ``Settings`` class.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from functools import cache

import pytest
import typer.main
from modelyard_registry.cli.app import app
from modelyard_registry.settings import Settings
from pydantic import AliasChoices
from typer import _click as click
from typer.core import TyperGroup

# Variables a Modelyard container may carry that are not Settings fields, each for a stated reason.
THIRD_PARTY_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "litellm: use the bundled price map, never fetch it",
    "HF_HUB_OFFLINE": "huggingface_hub: the image runs without network",
    "PYTHONUNBUFFERED": "python: logs reach the container runtime at once",
    "PYTHONDONTWRITEBYTECODE": "python: no .pyc writes into the image",
    "PATH": "shell: the virtualenv's bin first",
    "DEBIAN_FRONTEND": "apt during the build",
    "PIP_DISABLE_PIP_VERSION_CHECK": "pip during the build",
}

_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}
# Words that may precede a simple command inside a loop or conditional (`while ...; do yard ...`).
_SHELL_KEYWORDS = {"do", "then", "else", "!"}
_REDIRECTS = {">", ">>", "<", ">&", "<&", "&>", ">|", "<<"}
_SHELL_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@cache
def yard_root() -> TyperGroup:
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)
    return command


def yard_command_error(argv: list[str]) -> str | None:
    """Why the real `yard` would reject ``argv`` (starting with "yard"), or None if it parses.

    Walks the group tree to the leaf command, then lets click parse the remaining arguments
    without invoking anything: unknown commands and options, missing arguments and bad option
    values (ints, floats, choices) are all reported.
    """
    if not argv or argv[0] != "yard":
        return f"not a yard command: {argv}"
    command: click.Command = yard_root()
    path = ["yard"]
    args = argv[1:]
    while isinstance(command, TyperGroup):
        if not args:
            return f"{' '.join(path)} needs a subcommand"
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            return f"{' '.join(path)} has no command {args[0]!r}"
        path.append(args[0])
        command, args = sub, args[1:]
    try:
        command.make_context(" ".join(path), list(args), resilient_parsing=False)
    except typer.Exit:
        return None
    except click.ClickException as exc:
        return f"{' '.join(argv)}: {exc.format_message()}"
    return None


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a small shell script (split on ;, &&, ||, |), redirections dropped."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    commands: list[list[str]] = []
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in _OPERATORS:
            if words:
                commands.append(words)
            words = []
        elif token in _REDIRECTS:
            if words and words[-1].isdigit():
                words.pop()
            i += 1  # the redirection target
        else:
            words.append(token)
        i += 1
    if words:
        commands.append(words)
    return commands


def expand(word: str, env: Mapping[str, str], *, k8s: bool = False) -> str:
    """Expand $VAR / ${VAR} (shell) or $(VAR) (Kubernetes); an unknown variable is an error."""

    def lookup(name: str) -> str:
        if name not in env:
            raise KeyError(f"variable {name} is not set in the container's environment")
        return env[name]

    if k8s:
        return _K8S_VAR.sub(lambda m: lookup(m.group(1)), word)
    return _SHELL_VAR.sub(lambda m: lookup(m.group(1) or m.group(2)), word)


def shell_variables(script: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _SHELL_VAR.finditer(script)}


def yard_invocations(argv: list[str], env: Mapping[str, str]) -> list[list[str]]:
    """Every `yard ...` a container command runs: directly, or inside `sh -c "..."`."""
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"]):
        found = []
        for words in shell_commands(argv[2]):
            while words and words[0] in _SHELL_KEYWORDS:
                words = words[1:]
            if words and words[0] == "yard":
                found.append([expand(w, env) for w in words])
        return found
    return [argv] if argv and argv[0] == "yard" else []


@cache
def settings_env_names() -> frozenset[str]:
    """Every environment variable name Settings reads (upper case; matching is case-insensitive)."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return frozenset(names)


def api_key_envs(commands: Iterable[list[str]]) -> set[str]:
    """Variables named by `--api-key-env`: the catalogue stores the name, the process reads it."""
    names = set()
    for argv in commands:
        for i, word in enumerate(argv):
            if word == "--api-key-env" and i + 1 < len(argv):
                names.add(argv[i + 1])
            elif word.startswith("--api-key-env="):
                names.add(word.split("=", 1)[1])
    return names


def env_var_error(name: str, *, allowed_extra: Iterable[str] = ()) -> str | None:
    """Why ``name`` has no business in a Modelyard container's environment, or None."""
    upper = name.upper()
    if upper in settings_env_names():
        return None
    # MODELYARD_SECRET_* is the namespace for keys a catalogue entry names (`--api-key-env`),
    # never a setting; such a name is fine only where an entry really uses it.
    if upper.startswith("MODELYARD_SECRET_"):
        return None if name in set(allowed_extra) else f"{name}: no catalogue entry uses it"
    if upper.startswith("MODELYARD_"):
        return f"{name} is not a Settings field (renamed or misspelt?)"
    if name in THIRD_PARTY_ENV or name in set(allowed_extra):
        return None
    return f"{name} is neither a Settings field nor a known third-party variable"


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process with exactly ``env`` would build them (values are type-checked)."""
    for key in list(os.environ):
        if key.upper() in settings_env_names():
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.upper() in settings_env_names():
            monkeypatch.setenv(key, value)
    return Settings()
