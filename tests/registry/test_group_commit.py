"""Group commit: a write returns only once its row is committed, whatever the batch it rode in,
a failing write fails only its caller, and a broken connection is replaced by the next commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from modelyard_registry.db import get_engine
from modelyard_registry.group_commit import GroupCommitter
from modelyard_registry.scores import Call
from sqlmodel import Session, select


def row(request_id: str) -> Call:
    return Call(request_id=request_id, model_name="m", outcome="accepted")


def committed(url: str, request_id: str) -> bool:
    with Session(get_engine(url)) as session:
        return session.exec(select(Call).where(Call.request_id == request_id)).first() is not None


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gc.db'}"


def test_every_write_is_committed_before_it_returns(url: str) -> None:
    committer = GroupCommitter(url)
    missing: list[str] = []

    def writer(t: int) -> None:
        for i in range(25):
            rid = f"r{t}-{i}"
            committer.write(lambda s, rid=rid: s.add(row(rid)))
            if not committed(url, rid):  # read on another connection, right after return
                missing.append(rid)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    committer.close()
    assert missing == []
    assert committer.rows == 200 and 1 <= committer.commits <= 200


def test_a_failing_write_fails_its_caller_only(url: str) -> None:
    committer = GroupCommitter(url)
    committer.write(lambda s: s.add(row("ok-1")))

    def bad(session: Session) -> None:
        raise ValueError("bad write")

    with pytest.raises(ValueError, match="bad write"):
        committer.write(bad)
    committer.write(lambda s: s.add(row("ok-2")))
    assert committed(url, "ok-1") and committed(url, "ok-2")
    committer.close()


def test_a_broken_connection_is_replaced(url: str) -> None:
    committer = GroupCommitter(url)
    committer.write(lambda s: s.add(row("before")))
    held = committer._connection
    assert held is not None
    held.connection.dbapi_connection.close()  # type: ignore[union-attr]  # the link dies
    committer.write(lambda s: s.add(row("during")))  # fails on it, then commits on a fresh one
    committer.write(lambda s: s.add(row("after")))
    assert all(committed(url, r) for r in ("before", "during", "after"))
    assert committer._connection is not None and committer._connection is not held
    committer.close()


def test_sqlite_commits_leave_the_log_checkpoint_to_a_thread_of_its_own(tmp_path: Path) -> None:
    """A request's commit never copies the log back into the database (a checkpoint and its
    fsync, every ~80th request's answer, #15); the committer's thread does, moments later."""
    db = tmp_path / "ckpt.db"
    url = f"sqlite:///{db}"
    committer = GroupCommitter(url)
    assert committer.checkpointer is not None
    committer.checkpointer.close()  # no thread: what the commits alone do to the file
    size = db.stat().st_size
    for i in range(400):  # well past SQLite's automatic checkpoint at 1,000 log pages
        committer.write(lambda s, i=i: s.add(row(f"held-{i}")))
    assert Path(f"{db}-wal").stat().st_size > 1000 * 4096
    assert db.stat().st_size == size  # every page still in the log: no commit checkpointed
    assert committed(url, "held-399")
    committer.close()

    committer = GroupCommitter(url)  # with its thread: the pages reach the database file
    assert committer.checkpointer is not None
    committer.write(lambda s: s.add(row("last")))
    deadline = time.monotonic() + 10
    while db.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert db.stat().st_size > size
    assert committer.checkpointer.checkpoints >= 1
    committer.close()


def test_a_sqlite_commit_waits_for_another_writer_and_then_goes_in(url: str) -> None:
    """The committer's transactions take the write lock first and poll for it (no busy
    timeout of their own): a write made while another connection holds the lock neither fails
    nor goes in early, and is committed once the lock is let go."""
    committer = GroupCommitter(url)
    committer.write(lambda s: s.add(row("first")))
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
    errors: list[BaseException] = []

    def write() -> None:
        try:
            committer.write(lambda s: s.add(row("waited")))
        except BaseException as exc:  # the assertion below names it
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and errors == []  # waiting for the lock, not failed
    assert not committed(url, "waited")
    holder.execute("COMMIT")
    writer.join(10)
    assert not writer.is_alive() and errors == []
    assert committed(url, "waited")
    holder.close()
    committer.close()
