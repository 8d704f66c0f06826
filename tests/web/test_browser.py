"""End to end in headless Chromium against a live API + worker running the bundled SmolLM2.

Screenshots of the job page and the models page are saved under ``test-artifacts/web/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .conftest import WebStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
JOB_TIMEOUT_MS = 150_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # scripts/bootstrap.sh installs it; a missing browser is a failure
        pytest.fail("Debian chromium is not installed: run scripts/bootstrap.sh "
                    "(or apt-get install -y chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def sign_in(page: Page, stack: WebStack, email: str, password: str) -> None:
    page.goto(f"{stack.base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_wrong_password_and_form_validation(page: Page, web_stack: WebStack) -> None:
    sign_in(page, web_stack, web_stack.lead_email, "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    assert page.url.endswith("/login")
    expect(page.get_by_label("API key")).to_have_count(0)  # people exist: key sign-in is off

    sign_in(page, web_stack, web_stack.lead_email, web_stack.password)
    expect(page.get_by_role("heading", name="Products")).to_be_visible()
    page.get_by_role("link", name="Ticket triage").first.click()
    page.get_by_label("Subject").fill("No body")
    page.get_by_role("button", name="Run Ticket triage").click()
    expect(page.locator("#f-body-error")).to_have_text("input.body: Field required")
    expect(page.get_by_label("Body")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Subject")).to_have_value("No body")


def test_invited_person_runs_a_triage_and_sees_only_their_team(page: Page,
                                                                web_stack: WebStack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    person, password = "pat@web.example", "pat's long passphrase 2026"
    sign_in(page, web_stack, web_stack.lead_email, web_stack.password)
    page.get_by_role("link", name="Team", exact=True).click()
    page.get_by_label("Email").fill(person)
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#team-message")).to_contain_text(f"Invitation for {person}")
    link = page.locator("#invite-link").inner_text()
    page.screenshot(path=str(ARTIFACTS / "team.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")

    page.goto(link)
    expect(page.locator("#link-email")).to_have_text(person)
    page.get_by_label("New password").fill("short")
    page.get_by_label("Repeat the password").fill("short")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_have_text("Use at least 10 characters.")
    page.get_by_label("New password").fill(password)
    page.get_by_label("Repeat the password").fill(password)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_have_text("Your password is set: sign in with it.")
    page.goto(link)
    expect(page.get_by_role("heading", name="Link no longer valid")).to_be_visible()
    expect(page.locator("main")).to_contain_text("already used")

    sign_in(page, web_stack, person, password)
    expect(page.locator(".who")).to_contain_text(person)
    page.goto(f"{web_stack.base_url}/products/ticket-triage?example=1")
    page.get_by_role("button", name="Run Ticket triage").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    try:
        expect(page.locator("#job-status [data-status-badge]")).to_have_text(
            "succeeded", timeout=JOB_TIMEOUT_MS)
    except AssertionError:
        raise AssertionError(f"the job did not finish; logs:\n{web_stack.logs()}") from None
    job_id = page.url.rsplit("/", 1)[1]
    page.goto(f"{web_stack.base_url}/jobs")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)  # the ops team's echo job is not here
    expect(rows.first).to_contain_text(job_id[:8])
    expect(rows.first).to_contain_text("ticket-triage")

    for operator_page in ("/models", "/savings", "/team"):
        page.goto(f"{web_stack.base_url}{operator_page}")
        expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    page.goto(f"{web_stack.base_url}/")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{web_stack.base_url}/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=/jobs$"))


def test_expired_invitation_says_so(page: Page, web_stack: WebStack) -> None:
    from modelyard_platform.accounts import ensure_user, issue_link, link_url
    from modelyard_platform.models import LinkKind, Role
    from modelyard_registry.db import session_scope

    with session_scope(f"sqlite:///{web_stack.home / 'modelyard.db'}") as session:
        user, _ = ensure_user(session, email="late@web.example", team="web", role=Role.member)
        token = issue_link(session, user=user, kind=LinkKind.invite, ttl_s=-60)
    page.goto(link_url(web_stack.base_url, LinkKind.invite, token))
    expect(page.locator("main")).to_contain_text(
        "This invitation has expired. Ask your team admin for a new one.")
    expect(page.get_by_label("New password")).to_have_count(0)


def test_ticket_triage_runs_live_and_operator_sees_models(page: Page,
                                                          web_stack: WebStack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sign_in(page, web_stack, web_stack.admin_email, web_stack.password)
    page.goto(f"{web_stack.base_url}/products/ticket-triage?example=1")
    expect(page.get_by_label("Body")).to_contain_text("billed twice")
    page.get_by_role("button", name="Run Ticket triage").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    steps = page.locator("#steps [data-step]")
    expect(steps).to_have_count(4)
    try:
        expect(page.locator("#job-status [data-status-badge]")).to_have_text(
            "succeeded", timeout=JOB_TIMEOUT_MS)
    except AssertionError:
        page.screenshot(path=str(ARTIFACTS / "job-timeout.png"), full_page=True)
        raise AssertionError(f"the job did not finish; logs:\n{web_stack.logs()}") from None
    expect(page.locator("#result-category")).not_to_be_empty()
    expect(page.locator("#result-urgency")).not_to_be_empty()
    expect(page.locator("#result-reply")).not_to_be_empty()
    for name in ("classify", "extract", "draft", "check"):
        box = page.locator(f'#steps [data-step="{name}"]')
        expect(box).to_have_class(re.compile(r"step-(done|skipped)"))
    expect(page.locator("#steps .step-model").first).to_contain_text("smollm2-135m")
    expect(page.locator("#calls tbody tr").first).to_contain_text("smollm2-135m")
    page.get_by_text("Raw JSON").click()
    expect(page.locator("#raw-json")).to_contain_text('"category"')
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)

    page.get_by_role("link", name="Models").click()
    table = page.locator("#models-table")
    expect(table).to_contain_text("smollm2-135m")
    expect(table).to_contain_text("llama.cpp")
    expect(table.get_by_role("button", name="Disable smollm2-135m")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)
    page.get_by_role("link", name="Savings").click()
    expect(page.locator("svg.chart")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "savings.png"), full_page=True)
    print(f"screenshots: {ARTIFACTS}")
