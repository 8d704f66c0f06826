"""Private Redis and PostgreSQL servers a test may stop and restart at will.

Chaos tests take the broker or the database away mid-run; doing that to the machine's shared
servers (127.0.0.1:6379 and :5432) would break every other suite running beside them. These
start their own on free loopback ports, in temporary directories, and are stopped by the
fixtures that made them (``private_redis``, ``private_postgres`` in ``tests/conftest.py``).

PostgreSQL's ``initdb`` refuses to run as root: as root, the cluster belongs to the
``postgres`` OS user and every server command runs through ``runuser``. One cluster is
initialised per test session (``PostgresTemplate``) and copied per test, which is much faster
than an ``initdb`` each time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path(os.environ.get("MODELYARD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(port: int, up: bool, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _answers(port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still {'down' if up else 'up'} after {timeout_s}s")
        time.sleep(0.05)


class PrivateRedis:
    """A redis-server on its own port whose data survives a restart (append-only file)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
             "--protected-mode", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait(self.port, up=True)

    def stop(self) -> None:
        """SIGTERM: redis-server writes its append-only file and exits."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        _wait(self.port, up=False)

    @contextmanager
    def outage(self) -> Iterator[None]:
        """Redis is down inside the block and back (with its data) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()


class PostgresTemplate:
    """One initialised cluster directory (trust auth on loopback), copied for each server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "template"
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync"])

    @staticmethod
    def as_owner(argv: list[str]) -> list[str]:
        """Run as the ``postgres`` OS user when we are root (PostgreSQL refuses root)."""
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, argv: list[str]) -> None:
        subprocess.run(self.as_owner(argv), check=True, capture_output=True, timeout=300)

    def copy(self) -> Path:
        target = Path(tempfile.mkdtemp(prefix="pg-", dir=self.root))
        shutil.copytree(self.data, target / "data", symlinks=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(target)], check=True)
        (target / "data").chmod(0o700)
        return target / "data"

    @classmethod
    def create(cls) -> PostgresTemplate:
        root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        root.chmod(0o755)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres:postgres", str(root)], check=True)
        return cls(root)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL server on 127.0.0.1 only, on its own port, over a copy of the template."""

    def __init__(self, template: PostgresTemplate) -> None:
        self.template = template
        self.data = template.copy()
        self.port = _free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        argv = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]
        subprocess.run(PostgresTemplate.as_owner(argv), check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.data} -c fsync=off "
                   "-c max_connections=100")
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "start")
        _wait(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions cleanly; ``immediate`` is a crash (recovery on start)."""
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", mode, "stop")
        _wait(self.port, up=False)

    @contextmanager
    def outage(self, mode: str = "immediate") -> Iterator[None]:
        """The server is down inside the block (every connection dropped) and back after it."""
        self.stop(mode)
        try:
            yield
        finally:
            self.start()

    def database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data.parent, ignore_errors=True)
