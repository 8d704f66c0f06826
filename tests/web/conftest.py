"""Web UI fixtures: the app on a temp MODELYARD_HOME, people and keys, signed-in clients, a
live stack."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from modelyard_platform.accounts import ensure_user
from modelyard_platform.accounts.users import set_password
from modelyard_platform.api import create_app
from modelyard_platform.auth import create_key
from modelyard_platform.models import Role
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings

from tests.conftest import free_port, fresh_redis, redis_test_url, wait_http

WEB_REDIS_URL = redis_test_url(12)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def keys(settings: Settings) -> dict[str, str]:
    """An admin key (team ops) and a plain key (team web)."""
    with session_scope(settings.effective_database_url) as session:
        admin, _ = create_key(session, team="ops", admin=True)
        user, _ = create_key(session, team="web")
    return {"admin": admin, "user": user}


PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class People:
    """An admin of team ops and a member of team web (the teams of ``keys``)."""

    admin: str = "ada@ops.example"
    member: str = "mel@web.example"
    password: str = PASSWORD


def add_person(settings: Settings, email: str, team: str, role: Role,
               password: str = PASSWORD) -> None:
    with session_scope(settings.effective_database_url) as session:
        user, _ = ensure_user(session, email=email, team=team, role=role)
        set_password(session, user, password, min_length=settings.password_min_length)


@pytest.fixture
def people(settings: Settings, keys: dict[str, str]) -> People:
    found = People()
    add_person(settings, found.admin, "ops", Role.admin)
    add_person(settings, found.member, "web", Role.member)
    return found


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, email: str, password: str = PASSWORD,
            next_path: str = "/") -> TestClient:
    page = client.get("/login")
    response = client.post("/login", data={"email": email, "password": password,
                                           "csrf": csrf_of(page.text), "next": next_path})
    assert response.status_code == 303, response.text
    return client


def sign_in_with_key(client: TestClient, key: str, next_path: str = "/") -> TestClient:
    page = client.get("/login")
    response = client.post("/login", data={"api_key": key, "csrf": csrf_of(page.text),
                                           "next": next_path})
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def user_client(client: TestClient, people: People) -> TestClient:
    return sign_in(client, people.member)


@pytest.fixture
def admin_client(client: TestClient, people: People) -> TestClient:
    return sign_in(client, people.admin)



@dataclass
class WebStack:
    """A live `yard api` + `yard worker` on real Redis, with the bundled model pulled."""

    base_url: str
    admin_key: str
    user_key: str
    home: Path
    admin_email: str = "admin@ops.example"  # admin of team ops (runs the operator pages)
    lead_email: str = "lead@web.example"  # admin of team web (invites people)
    password: str = PASSWORD

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.home.glob("*.log")))


def _yard(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "modelyard_platform", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"yard {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def _accept_invitation(link: str, password: str) -> None:
    """Set a first password through the invitation link, as a browser would."""
    with httpx.Client(timeout=30) as browser:
        form = browser.get(link)
        assert form.status_code == 200, form.text
        done = browser.post(link, data={"csrf": csrf_of(form.text), "password": password,
                                        "password_again": password})
        assert done.status_code == 303, done.text


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """API and worker processes for browser tests (Redis db 12, flushed first)."""
    fresh_redis(WEB_REDIS_URL)
    home = tmp_path_factory.mktemp("web-home")
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "MODELYARD_DATABASE_URL", "MODELYARD_REDIS_URL"}}
    env.update({"MODELYARD_HOME": str(home), "REDIS_URL": WEB_REDIS_URL,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True", "MODELYARD_N_THREADS": "2",
                "MODELYARD_WORKER_CONCURRENCY": "1"})
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env["MODELYARD_PUBLIC_URL"] = base_url
    _yard(env, "models", "pull", "smollm2-135m", "--eval-limit", "2")  # 10 per kind: ~100 s
    admin_key = _yard(env, "keys", "create", "--team", "ops", "--admin").strip()
    user_key = _yard(env, "keys", "create", "--team", "web").strip()
    links = [_yard(env, "users", "create", email, "--team", team, "--admin").strip()
             for email, team in (("admin@ops.example", "ops"), ("lead@web.example", "web"))]
    procs = []
    try:
        for name, args in (("api", ["api", "--port", str(port)]),
                           ("worker", ["worker", "--loglevel", "info"])):
            log = open(home / f"{name}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "modelyard_platform", *args], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
            if name == "api":
                wait_http(f"http://127.0.0.1:{port}/healthz", 60, procs[0])
        for link in links:
            _accept_invitation(link, PASSWORD)
        echo = httpx.post(f"{base_url}/v1/products/echo/jobs", json={"input": {"message": "ops"}},
                          headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
        assert echo.status_code in (200, 201, 202), echo.text  # a job of another team (ops)
        yield WebStack(base_url, admin_key, user_key, home)
    finally:
        for proc in procs:
            _stop(proc)
