"""Reading a GGUF header in a child process with bounded memory, CPU time and wall time.

A GGUF header is attacker-shaped data: counts and lengths the file states but need not hold (a
metadata count of 2^63, a vocabulary of a hundred million empty strings). ``gguf_header`` checks
every stated count against the bytes left, but it is still a parser of hostile input written in
Python, so it runs behind a second wall: registration (``yard models add``, ``POST /v1/models``)
reads it here: the child sets ``RLIMIT_AS`` and ``RLIMIT_CPU`` on itself before reading, the
parent waits at most ``timeout_s``, and anything short of a clean answer is ``InvalidModelFile``
(422, exit code 2). The API process never parses the header itself.

The child is a fresh interpreter (``subprocess``, never ``fork`` of a threaded server), started
as ``python -m modelyard_registry.gguf_probe MEMORY_BYTES CPU_S PATH``; it prints the facts as
one JSON object, or ``{"error": message}`` for a file the reader rejected.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from .errors import InvalidModelFile
from .gguf_info import GGUFInfo, check_readable, read_gguf

# The header reader (gguf_header) walks SmolLM2's header in ~0.4 s and a 256k-token vocabulary
# in ~1.4 s on this 2-core machine, plus ~1 s to start the child. Generous, but bounded.
TIMEOUT_S = 180.0
CPU_S = 120
# Beyond the file itself (memory-mapped whole): the interpreter, numpy and the parsed metadata.
MEMORY_HEADROOM_BYTES = 1024 * 1024 * 1024


# Facts already read in this process, by file identity: re-registering the same file (a model
# pulled into many homes, a test suite's fixtures) costs no new child. Any change to the file
# changes its size, mtime or inode, so a stale answer cannot be served.
_FileId = tuple[int, int, int, int]
_READ: dict[_FileId, GGUFInfo] = {}
_READ_MAX = 256
_READ_LOCK = threading.Lock()


def _file_id(path: Path) -> _FileId:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_gguf_bounded(
    path: Path,
    *,
    timeout_s: float = TIMEOUT_S,
    cpu_s: int = CPU_S,
    memory_headroom_bytes: int = MEMORY_HEADROOM_BYTES,
) -> GGUFInfo:
    """The header's facts, read by a resource-limited child; ``InvalidModelFile`` otherwise."""
    check_readable(path)  # missing, a directory, unreadable, bad magic: no child needed
    ident = _file_id(path)
    with _READ_LOCK:
        known = _READ.get(ident)
    if known is not None:
        return known
    info = _read_in_child(path, timeout_s, cpu_s, memory_headroom_bytes)
    with _READ_LOCK:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        _READ[ident] = info
    return info


def _read_in_child(path: Path, timeout_s: float, cpu_s: int,
                   memory_headroom_bytes: int) -> GGUFInfo:
    memory = path.stat().st_size + memory_headroom_bytes
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(memory), str(cpu_s), str(path)],
            capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidModelFile(
            f"{path} is not a usable GGUF file: reading its header took over {timeout_s:g}s",
            field="gguf_path",
        ) from exc
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        answer = {}
    if done.returncode == 0 and isinstance(answer, dict) and "architecture" in answer:
        return GGUFInfo(**answer)
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise InvalidModelFile(answer["error"], field="gguf_path")
    raise InvalidModelFile(
        f"{path} is not a usable GGUF file: reading its header exceeded the reader's limits "
        f"({memory // (1024 * 1024)} MiB of memory, {cpu_s}s of CPU; exit {done.returncode})",
        field="gguf_path",
    )


def _limit_self(memory_bytes: int, cpu_s: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))


def main(argv: list[str]) -> int:
    memory, cpu_s, path = int(argv[0]), int(argv[1]), Path(argv[2])
    _limit_self(memory, cpu_s)
    try:
        info = read_gguf(path)
    except InvalidModelFile as exc:
        print(json.dumps({"error": exc.message}))
        return 3
    except MemoryError:
        print(json.dumps({"error": f"{path} is not a usable GGUF file: its header asks for "
                                   "more memory than the reader allows"}))
        return 3
    print(json.dumps(dataclasses.asdict(info)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
