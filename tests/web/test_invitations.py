"""Invitations, reset links and the team page over HTTP; links mailed through a real SMTP server
(aiosmtpd on loopback); `yard users ...` from the command line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from modelyard_platform.accounts import issue_link
from modelyard_platform.accounts.users import get_user
from modelyard_platform.api import create_app
from modelyard_platform.models import LinkKind
from modelyard_registry.cli.app import app as yard_app
from modelyard_registry.db import session_scope
from modelyard_registry.settings import Settings
from typer.testing import CliRunner

from tests.conftest import free_port

from .conftest import PASSWORD, People, csrf_of, sign_in

LINK = re.compile(r'id="invite-link">(http[^<]+)<')
NEW_PASSWORD = "tangerine submarine 77"


class Inbox:
    """An SMTP handler keeping every message it is sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content or b"")))
        return "250 OK"

    def bodies_to(self, address: str) -> list[str]:
        found = []
        for rcpts, raw in self.messages:
            if address in rcpts:
                message = message_from_bytes(raw)
                payload = message.get_payload(decode=True)
                found.append(payload.decode() if isinstance(payload, bytes) else str(payload))
        return found


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def invite(client: TestClient, email: str, role: str = "member") -> str:
    token = csrf_of(client.get("/team").text)
    page = client.post("/team/invite", data={"csrf": token, "email": email, "role": role})
    assert page.status_code == 200, page.text
    match = LINK.search(page.text)
    assert match, page.text
    return match.group(1)


def set_password(client: TestClient, link: str, password: str, again: str | None = None
                 ) -> object:
    path = link.split("testserver", 1)[1]
    form = client.get(path)
    assert form.status_code == 200, form.text
    return client.post(path, data={"csrf": csrf_of(form.text), "password": password,
                                   "password_again": again or password})


def test_admin_invites_and_the_person_sets_a_password(admin_client: TestClient, app: object,
                                                      people: People) -> None:
    link = invite(admin_client, "new.person@ops.example")
    assert "/invite/" in link
    listed = admin_client.get("/team").text
    assert "new.person@ops.example" in listed and "invited" in listed
    with TestClient(app, follow_redirects=False) as browser:  # type: ignore[arg-type]
        assert "new.person@ops.example" in browser.get(link.split("testserver", 1)[1]).text
        weak = set_password(browser, link, "password1")
        assert weak.status_code == 422 and "at least 10" in weak.text  # type: ignore[attr-defined]
        differ = set_password(browser, link, NEW_PASSWORD, "something else entirely")
        assert differ.status_code == 422 and "differ" in differ.text  # type: ignore[attr-defined]
        done = set_password(browser, link, NEW_PASSWORD)
        assert done.status_code == 303  # type: ignore[attr-defined]
        assert done.headers["location"] == "/login?notice=password-set"  # type: ignore[attr-defined]
        again = browser.get(link.split("testserver", 1)[1])
        assert again.status_code == 410 and "already used" in again.text
        sign_in(browser, "new.person@ops.example", NEW_PASSWORD)
        home = browser.get("/")
        assert "new.person@ops.example" in home.text and 'href="/models"' not in home.text


def test_expired_and_unknown_links_say_so(client: TestClient, settings: Settings,
                                          people: People) -> None:
    with session_scope(settings.effective_database_url) as session:
        user = get_user(session, people.member)
        token = issue_link(session, user=user, kind=LinkKind.reset, ttl_s=-1)
    expired = client.get(f"/reset/{token}")
    assert expired.status_code == 410 and "has expired" in expired.text
    assert "text/html" in expired.headers["content-type"]
    unknown = client.get("/invite/not-a-real-token")
    assert unknown.status_code == 410 and "not valid" in unknown.text


def test_reset_link_ends_the_old_sessions(admin_client: TestClient, app: object,
                                          people: People) -> None:
    link = invite(admin_client, "ron@ops.example")
    with TestClient(app, follow_redirects=False) as ron:  # type: ignore[arg-type]
        assert set_password(ron, link, NEW_PASSWORD).status_code == 303  # type: ignore[attr-defined]
        sign_in(ron, "ron@ops.example", NEW_PASSWORD)
        page = admin_client.get("/team").text
        ron_id = re.search(r'/team/members/(\d+)/reset"[^>]*><input[^>]*><button[^>]*>'
                           r'New link for ron@ops.example', page)
        assert ron_id
        issued = admin_client.post(f"/team/members/{ron_id.group(1)}/reset",
                                   data={"csrf": csrf_of(page)})
        reset = LINK.search(issued.text)
        assert reset and "/reset/" in reset.group(1)
        assert "No mail server is configured" in issued.text
        assert ron.get("/").status_code == 200  # issuing alone ends nothing
        with TestClient(app, follow_redirects=False) as other:  # type: ignore[arg-type]
            assert set_password(other, reset.group(1), "another passphrase 99").status_code == 303  # type: ignore[attr-defined]
        assert ron.get("/").status_code == 303  # using it does


def test_no_reset_links_for_people_of_teams_one_does_not_administer(
        admin_client: TestClient, people: People) -> None:
    token = csrf_of(admin_client.get("/team").text)
    added = admin_client.post("/team/invite", data={"csrf": token, "email": people.member,
                                                    "role": "member"})
    assert "already has an account; added to ops" in added.text
    assert 'id="invite-link"' not in added.text  # she has a password: no link needed
    mel = re.search(r'/team/members/(\d+)/reset"[^>]*><input[^>]*><button[^>]*>'
                    r'New link for mel@web.example', added.text)
    assert mel
    refused = admin_client.post(f"/team/members/{mel.group(1)}/reset", data={"csrf": token})
    assert refused.status_code == 403 and "teams you do not administer" in refused.text


def test_members_cannot_open_the_team_page(user_client: TestClient) -> None:
    response = user_client.get("/team")
    assert response.status_code == 403 and "team admins" in response.text


def test_invitation_is_mailed_when_smtp_is_configured(settings: Settings, people: People,
                                                      smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mailing = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port,
                                          "smtp_from": "yard@ops.example",
                                          "smtp_starttls": False})
    with TestClient(create_app(mailing), follow_redirects=False) as client:
        sign_in(client, people.admin)
        link = invite(client, "mailed@ops.example")
        (body,) = inbox.bodies_to("mailed@ops.example")
        assert link in body and "works once" in body
        client.cookies.clear()
        # forgotten password: a link for a real account, the same answer for an unknown one
        for email in (people.member, "nobody@nowhere.example"):
            form = client.get("/password/forgot")
            answer = client.post("/password/forgot", data={"csrf": csrf_of(form.text),
                                                           "email": email})
            assert answer.status_code == 200 and "If an account exists" in answer.text
        (reset,) = inbox.bodies_to(people.member)
        assert "/reset/" in reset
        assert inbox.bodies_to("nobody@nowhere.example") == []
        path = re.search(r"http://testserver(/reset/\S+)", reset)
        assert path
        form = client.get(path.group(1))
        done = client.post(path.group(1), data={"csrf": csrf_of(form.text),
                                                "password": NEW_PASSWORD,
                                                "password_again": NEW_PASSWORD})
        assert done.status_code == 303
        sign_in(client, people.member, NEW_PASSWORD)


def test_forgot_password_needs_smtp(client: TestClient) -> None:
    assert client.get("/password/forgot").status_code == 404
    assert "Forgot your password" not in client.get("/login").text


def test_yard_users_create_list_disable(settings: Settings, app: object) -> None:
    runner = CliRunner()
    made = runner.invoke(yard_app, ["users", "create", "Cli.Person@Example.com", "--team",
                                    "cli", "--admin"])
    assert made.exit_code == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith("http://127.0.0.1:8000/invite/")
    listed = runner.invoke(yard_app, ["users", "list", "--json"])
    (row,) = json.loads(listed.stdout)
    assert row["email"] == "cli.person@example.com" and row["has_password"] is False
    assert row["teams"] == [{"team": "cli", "role": "admin"}]
    bad = runner.invoke(yard_app, ["users", "create", "not-an-email", "--team", "cli"])
    assert bad.exit_code == 2 and "not an email address" in bad.stderr
    with TestClient(app, follow_redirects=False) as browser:  # type: ignore[arg-type]
        path = link.removeprefix("http://127.0.0.1:8000")
        form = browser.get(path)
        assert browser.post(path, data={"csrf": csrf_of(form.text), "password": NEW_PASSWORD,
                                        "password_again": NEW_PASSWORD}).status_code == 303
        sign_in(browser, "cli.person@example.com", NEW_PASSWORD)
        assert browser.get("/models").status_code == 200  # admin role: operator pages
        token = csrf_of(browser.get("/account").text)
        made_key = browser.post("/account/keys", data={"csrf": token})
        key = re.search(r'id="new-key">(my_[^<]+)<', made_key.text)
        assert key, made_key.text
        api = {"Authorization": f"Bearer {key.group(1)}"}
        assert browser.get("/v1/jobs", headers=api).status_code == 200
        disabled = runner.invoke(yard_app, ["users", "disable", "cli.person@example.com"])
        assert disabled.exit_code == 0, disabled.stderr
        assert browser.get("/").status_code == 303  # the session ended
        assert browser.get("/v1/jobs", headers=api).status_code == 401  # the key too
        again = browser.get("/login")
        refused = browser.post("/login", data={"csrf": csrf_of(again.text),
                                               "email": "cli.person@example.com",
                                               "password": NEW_PASSWORD})
        assert refused.status_code == 401 and "Wrong email or password." in refused.text
    gone = runner.invoke(yard_app, ["users", "disable", "nobody@example.com"])
    assert gone.exit_code == 2 and "no user" in gone.stderr
    assert PASSWORD  # the shared fixture password stays unused here
