"""A lean, bounded reader of a GGUF file's header: the metadata we register and the tensor index.

``gguf.GGUFReader`` builds a numpy view and a Python object for every vocabulary entry and every
tensor; on SmolLM2 (49k tokens, 48k merges) that is about 9 s of CPU per read, paid on every
registration. Registration needs a dozen scalars and the tensor sizes, so this reader walks the
header once with ``struct``: arrays are skipped (string arrays by their length prefixes), and only
the scalars and strings whose keys are asked for are decoded. Every count and length the file
states is checked against the bytes that are really left before it is used, so a header that
claims 2^63 entries is refused at once instead of allocating or looping (the resource-limited
child in ``gguf_probe`` stays as a second wall).

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (versions 2 and 3).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_ARRAY_DEPTH = 4
_DEFAULT_ALIGNMENT = 32


class HeaderError(ValueError):
    """The header is cut short or states something its bytes cannot hold."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    n_elements: int
    n_bytes: int
    data_offset: int  # absolute offset of the tensor's data in the file


@dataclass(frozen=True)
class Header:
    version: int
    metadata: dict[str, int | float | bool | str]  # only the wanted keys, scalars and strings
    tensors: list[TensorInfo]


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf, self.pos, self.size = buf, 0, len(buf)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise HeaderError(f"{what} runs past the end of the file (needs {n} bytes at byte "
                              f"{self.pos}, the file has {self.size})")

    def unpack(self, fmt: str, what: str) -> int | float | bool:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value  # type: ignore[no-any-return]

    def u32(self, what: str) -> int:
        return int(self.unpack("<I", what))

    def u64(self, what: str) -> int:
        return int(self.unpack("<Q", what))

    def string(self, what: str, *, keep: bool = True) -> str:
        n = self.u64(what)
        self.need(n, what)
        start, self.pos = self.pos, self.pos + n
        return bytes(self.buf[start:self.pos]).decode("utf-8", "replace") if keep else ""

    def count(self, what: str, min_item_bytes: int) -> int:
        """A stated number of items, refused when even the smallest items could not fit."""
        n = self.u64(what)
        if n * min_item_bytes > self.size - self.pos:
            raise HeaderError(f"{what} states {n} entries, more than the file's remaining "
                              f"{self.size - self.pos} bytes can hold")
        return n


def _skip_value(cur: _Cursor, kind: int, key: str, depth: int = 0) -> None:
    if kind in _SCALARS:
        n = struct.calcsize(_SCALARS[kind])
        cur.need(n, key)
        cur.pos += n
    elif kind == _STRING:
        cur.string(key, keep=False)
    elif kind == _ARRAY:
        if depth >= _MAX_ARRAY_DEPTH:
            raise HeaderError(f"{key}: arrays nested deeper than {_MAX_ARRAY_DEPTH}")
        item = cur.u32(key)
        if item in _SCALARS:
            n = cur.count(key, struct.calcsize(_SCALARS[item]))
            cur.pos += n * struct.calcsize(_SCALARS[item])
        elif item == _STRING:
            for _ in range(cur.count(key, 8)):
                cur.string(key, keep=False)
        elif item == _ARRAY:
            for _ in range(cur.count(key, 12)):
                _skip_value(cur, _ARRAY, key, depth + 1)
        else:
            raise HeaderError(f"{key}: unknown array item type {item}")
    else:
        raise HeaderError(f"{key}: unknown value type {kind}")


def read_header(path: Path, wanted: Callable[[str], bool],
                block_sizes: dict[int, tuple[int, int]]) -> Header:
    """Parse ``path``'s header; keep the scalar and string metadata whose key is ``wanted``.

    Arrays are always skipped. ``block_sizes`` maps a tensor type id to (elements per block,
    bytes per block), gguf's ``GGML_QUANT_SIZES``, so a tensor's byte size can be checked
    against the file's size.
    """
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        cur.need(4, "magic")
        if bytes(buf[:4]) != b"GGUF":
            raise HeaderError("bad magic")
        cur.pos = 4
        version = cur.u32("version")
        if version not in (2, 3):
            raise HeaderError(f"unsupported GGUF version {version}")
        n_tensors = cur.count("tensor count", 8 + 4 + 8 + 4 + 8)
        n_kv = cur.count("metadata count", 8 + 4 + 1)
        metadata: dict[str, int | float | bool | str] = {}
        for _ in range(n_kv):
            key = cur.string("metadata key")
            kind = cur.u32(key)
            if kind in _SCALARS and wanted(key):
                metadata[key] = cur.unpack(_SCALARS[kind], key)
            elif kind == _STRING and wanted(key):
                metadata[key] = cur.string(key)
            else:
                _skip_value(cur, kind, key)
        raw: list[tuple[str, int, int, int]] = []
        for _ in range(n_tensors):
            name = cur.string("tensor name")
            n_dims = cur.u32(name)
            if n_dims > 8:
                raise HeaderError(f"tensor {name}: {n_dims} dimensions")
            elements = 1
            for _ in range(n_dims):
                elements *= cur.u64(name)
            raw.append((name, elements, cur.u32(name), cur.u64(name)))
        alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            alignment = _DEFAULT_ALIGNMENT
        data_start = -(-cur.pos // alignment) * alignment
    tensors = []
    for name, elements, kind, offset in raw:
        if kind not in block_sizes:
            raise HeaderError(f"tensor {name}: unknown type {kind}")
        per_block, block_bytes = block_sizes[kind]
        tensors.append(TensorInfo(name, elements, elements // per_block * block_bytes,
                                  data_start + offset))
    return Header(version, metadata, tensors)
