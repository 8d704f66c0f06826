"""Registering GGUF files: header facts, checksum and RAM estimate, then one catalogue row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session

from .catalog import (
    Backend,
    Capability,
    ModelCreate,
    ModelEntry,
    add_model,
    find_model,
    validate_slug,
)
from .errors import Conflict
from .gguf_info import GGUFInfo, sha256_file
from .gguf_probe import read_gguf_bounded
from .settings import Settings


def default_capabilities(info: GGUFInfo) -> list[str]:
    """Every GGUF can complete and follow a JSON-schema grammar; chat needs a chat template.

    Tools need a template that renders them (the runner then constrains calls by a grammar).
    """
    caps = [Capability.completion.value, Capability.json_schema.value]
    if info.has_chat_template:
        caps.append(Capability.chat.value)
        if info.template_tools:
            caps.append(Capability.tools.value)
    return caps


def register_gguf(
    session: Session,
    settings: Settings,
    *,
    name: str,
    path: Path,
    capabilities: list[str] | None = None,
    sha256: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ModelEntry:
    """Validate everything first, so a bad file or a taken name leaves the catalogue unchanged.

    The header is read by a resource-limited child process (``gguf_probe``): a hostile file
    costs that child, never the API or CLI process that registers it.
    """
    validate_slug(name)
    if find_model(session, name) is not None:
        raise Conflict(f"a model named {name!r} already exists", field="name")
    path = path.expanduser().resolve()
    info = read_gguf_bounded(path)
    digest = sha256 or sha256_file(path, on_bytes)
    model_in = ModelCreate(
        name=name,
        backend=Backend.llama_cpp,
        gguf_path=str(path),
        sha256=digest,
        size_bytes=info.size_bytes,
        family=info.architecture,
        parameters=info.parameters,
        quantization=info.quantization,
        context_length=info.context_length,
        capabilities=capabilities if capabilities is not None else default_capabilities(info),
        ram_bytes=info.ram_estimate(settings.n_ctx),
    )
    return add_model(session, model_in)
