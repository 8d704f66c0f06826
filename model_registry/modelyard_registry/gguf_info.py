"""What a GGUF file really is, read from its header (never typed by hand).

Also the guard for bad files: a missing path, a directory, an unreadable file, something that is not
GGUF, or a file cut short all raise ``InvalidModelFile`` before anything is registered.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidModelFile
from .gguf_header import HeaderError, read_header

GGUF_MAGIC = b"GGUF"
_KV_BYTES = 2  # llama.cpp keeps the KV cache in f16 by default
_OVERHEAD_BYTES = 96 * 1024 * 1024  # compute buffers and scratch, measured ~60-90 MB on CPU


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    name: str | None
    parameters: int
    quantization: str
    context_length: int | None
    has_chat_template: bool
    n_layers: int | None
    kv_width: int | None
    size_bytes: int
    template_tools: bool = False  # the chat template renders a ``tools`` variable

    def ram_estimate(self, n_ctx: int) -> int:
        """Weights (mmapped, resident once touched) + KV cache for ``n_ctx`` + buffers."""
        ctx = min(n_ctx, self.context_length or n_ctx)
        kv = 2 * (self.n_layers or 0) * ctx * (self.kv_width or 0) * _KV_BYTES
        return self.size_bytes + kv + _OVERHEAD_BYTES


def check_readable(path: Path) -> None:
    if not path.exists():
        raise InvalidModelFile(f"no such file: {path}", field="gguf_path")
    if path.is_dir():
        raise InvalidModelFile(f"{path} is a directory, not a GGUF file", field="gguf_path")
    if not os.access(path, os.R_OK):
        raise InvalidModelFile(f"cannot read {path}: permission denied", field="gguf_path")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise InvalidModelFile(f"cannot read {path}: {exc.strerror}", field="gguf_path") from exc
    if magic != GGUF_MAGIC:
        raise InvalidModelFile(f"{path} is not a GGUF file (bad magic)", field="gguf_path")


# Metadata the registry reads; everything else in the header (vocabulary, merges) is skipped.
_WANTED_SUFFIXES = (
    ".context_length", ".block_count", ".embedding_length", ".attention.head_count",
    ".attention.head_count_kv", ".attention.key_length",
)
_WANTED_KEYS = frozenset({
    "general.architecture", "general.name", "general.file_type", "general.alignment",
    "tokenizer.chat_template",
})


def _wanted(key: str) -> bool:
    return key in _WANTED_KEYS or key.endswith(_WANTED_SUFFIXES)


def read_gguf(path: Path) -> GGUFInfo:
    """Parse the header and tensor index; raises ``InvalidModelFile`` on any defect."""
    check_readable(path)
    from gguf import GGML_QUANT_SIZES, LlamaFileType

    size = path.stat().st_size
    try:
        header = read_header(path, _wanted, {int(k): v for k, v in GGML_QUANT_SIZES.items()})
    except (HeaderError, OSError, ValueError) as exc:
        raise InvalidModelFile(
            f"{path} is not a valid GGUF file (truncated or corrupt header: {exc})",
            field="gguf_path",
        ) from exc
    end = max((t.data_offset + t.n_bytes for t in header.tensors), default=0)
    if not header.tensors or end > size:
        raise InvalidModelFile(
            f"{path} is truncated: tensor data ends at byte {end} but the file has {size}",
            field="gguf_path",
        )
    meta = header.metadata
    arch = str(meta.get("general.architecture") or "unknown")
    template = meta.get("tokenizer.chat_template")
    try:
        quant = LlamaFileType(int(meta["general.file_type"])).name.removeprefix("MOSTLY_")
    except (KeyError, TypeError, ValueError):
        quant = "unknown"
    heads = _as_int(meta.get(f"{arch}.attention.head_count"))
    heads_kv = _as_int(meta.get(f"{arch}.attention.head_count_kv")) or heads
    embd = _as_int(meta.get(f"{arch}.embedding_length"))
    key_len = _as_int(meta.get(f"{arch}.attention.key_length"))
    head_dim = key_len or (embd // heads if embd and heads else None)
    name = meta.get("general.name")
    return GGUFInfo(
        architecture=arch,
        name=name if isinstance(name, str) else None,
        parameters=sum(t.n_elements for t in header.tensors),
        quantization=quant,
        context_length=_as_int(meta.get(f"{arch}.context_length")),
        has_chat_template=isinstance(template, str),
        template_tools=isinstance(template, str) and re.search(r"\btools\b", template) is not None,
        n_layers=_as_int(meta.get(f"{arch}.block_count")),
        kv_width=heads_kv * head_dim if heads_kv and head_dim else None,
        size_bytes=size,
    )


def _as_int(value: int | float | bool | str | None) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def sha256_file(path: Path, on_progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 * 1024 * 1024):
            digest.update(block)
            if on_progress:
                on_progress(len(block))
    return digest.hexdigest()
