"""Hostile GGUF files at registration: a clear refusal (422 / exit 2), never a crash or a stall.

The header is read in a child process with bounded memory and time (``gguf_probe``); these
files are built by hand, byte by byte, to say things the file does not hold.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from modelyard_platform import auth
from modelyard_platform.api import create_app
from modelyard_registry.cli.app import app
from modelyard_registry.db import session_scope
from modelyard_registry.errors import InvalidModelFile
from modelyard_registry.gguf_probe import read_gguf_bounded
from modelyard_registry.settings import Settings
from typer.testing import CliRunner

STRING, ARRAY, UINT32 = 8, 9, 4


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def header(kv_count: int, kvs: bytes = b"", tensor_count: int = 0) -> bytes:
    """A GGUF v3 header that states ``kv_count`` metadata pairs and holds ``kvs``."""
    return b"GGUF" + struct.pack("<IQQ", 3, tensor_count, kv_count) + kvs


def kv_string(key: str, value: str) -> bytes:
    return _str(key) + struct.pack("<I", STRING) + _str(value)


def hostile_files(directory: Path, smollm2_path: Path) -> dict[str, Path]:
    files = {
        # a real model cut inside its metadata
        "truncated": smollm2_path.read_bytes()[:4096],
        # 2^63 - 1 metadata pairs stated, one present
        "absurd_count": header(2**63 - 1, kv_string("general.architecture", "llama")),
        # a string that claims to be an exabyte long
        "absurd_string": header(1, _str("general.name") + struct.pack("<IQ", STRING, 2**60)),
        # an array of 2^62 strings
        "absurd_array": header(1, _str("tokenizer.ggml.tokens")
                               + struct.pack("<IIQ", ARRAY, STRING, 2**62)),
        # 2^40 tensors stated, none present
        "absurd_tensors": header(1, kv_string("general.architecture", "llama"),
                                 tensor_count=2**40),
        # a key that claims to be longer than the file
        "absurd_key": header(1, struct.pack("<Q", 2**50) + b"general"),
    }
    paths = {}
    for name, data in files.items():
        path = directory / f"{name}.gguf"
        path.write_bytes(data)
        paths[name] = path
    return paths


def test_hostile_headers_are_invalid_model_files(tmp_path: Path, smollm2_path: Path) -> None:
    for name, path in hostile_files(tmp_path, smollm2_path).items():
        with pytest.raises(InvalidModelFile) as caught:
            read_gguf_bounded(path)
        assert caught.value.field == "gguf_path", name
        assert str(path) in caught.value.message, (name, caught.value.message)


def test_a_vocabulary_bomb_is_walked_not_materialised(tmp_path: Path) -> None:
    """Half a million empty vocabulary strings (a 4 MB file ``gguf.GGUFReader`` turned into
    hundreds of MB of Python objects): the header reader skips arrays by their length prefixes,
    so the bomb costs nothing and the file is refused for what it is, a model without tensors."""
    count = 500_000
    vocab = (_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, count)
             + struct.pack("<Q", 0) * count)
    path = tmp_path / "vocab_bomb.gguf"
    path.write_bytes(header(2, kv_string("general.architecture", "llama") + vocab))
    with pytest.raises(InvalidModelFile) as caught:
        read_gguf_bounded(path)
    assert "truncated" in caught.value.message


@pytest.mark.parametrize("limits", [{"memory_headroom_bytes": 16 * 2**20}, {"cpu_s": 1}],
                         ids=["memory", "cpu"])
def test_a_read_over_the_childs_limits_is_refused(
    tmp_path: Path, limits: dict[str, int]
) -> None:
    """The child's allowances hold whatever the reader does: eight million empty vocabulary
    strings take seconds of CPU to walk, and 16 MiB beyond the file is less than the child's
    interpreter needs. Over either allowance the child dies and the caller gets a clear refusal;
    the caller's own process never held the parse."""
    count = 8_000_000
    vocab = (_str("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, count)
             + bytes(8 * count))
    path = tmp_path / "vocab_bomb.gguf"
    path.write_bytes(header(2, kv_string("general.architecture", "llama") + vocab))
    with pytest.raises(InvalidModelFile) as caught:
        read_gguf_bounded(path, **limits)
    assert "limits" in caught.value.message or "more memory" in caught.value.message


def test_cli_refuses_hostile_files_with_exit_2(
    yard_home: Path, tmp_path: Path, smollm2_path: Path
) -> None:
    runner = CliRunner()
    files = hostile_files(tmp_path, smollm2_path)
    for name in ("truncated", "absurd_count"):
        path = files[name]
        result = runner.invoke(app, ["models", "add", "x", "--gguf", str(path)])
        assert result.exit_code == 2, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == "[]"


@pytest.fixture
def api(yard_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[tuple[TestClient, dict[str, str]]]:
    monkeypatch.setenv("MODELYARD_GGUF_DIRS", str(tmp_path))
    settings = Settings()
    with session_scope(settings.effective_database_url) as session:
        plain, _ = auth.create_key(session, team="ops", admin=True)
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {plain}"}


def test_api_answers_422_for_hostile_files_and_keeps_serving(
    api: tuple[TestClient, dict[str, str]], tmp_path: Path, smollm2_path: Path
) -> None:
    client, admin = api
    pid = os.getpid()
    files = hostile_files(tmp_path, smollm2_path)
    for name in ("truncated", "absurd_array"):
        path = files[name]
        r = client.post("/v1/models", json={"name": "x", "gguf_path": str(path)}, headers=admin)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["field"] == "gguf_path"
    assert os.getpid() == pid and client.get("/healthz").status_code == 200
    assert client.get("/v1/models", headers=admin).json()["data"] == []
