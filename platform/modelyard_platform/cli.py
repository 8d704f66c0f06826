"""Platform commands for `yard`: `api`, `worker`, `up`, `keys`, `teams`, `users`.

Thin skins over the library: the supervisor, the Celery app factory and the auth functions.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from modelyard_registry.cli.common import catalogue, err, new_app, out, print_json
from modelyard_registry.settings import get_settings
from rich.table import Table

from . import auth

keys_app = new_app("API keys: create (shown once), list, revoke.")
teams_app = new_app("Teams: budgets.")
users_app = new_app("People who sign in to the web UI: invite, list, reset, disable.")

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]


WorkersOpt = Annotated[int | None, typer.Option(
    min=1, help="API processes sharing the port (default: MODELYARD_API_WORKERS, 1).")]


AccessLogOpt = Annotated[bool, typer.Option(
    help="Log every request (uvicorn's access log). Off by default: a log line per request "
         "costs more CPU than routing it; /metrics counts requests per route and status.")]


def api(host: HostOpt = "127.0.0.1", port: PortOpt = 8000, workers: WorkersOpt = None,
        access_log: AccessLogOpt = False) -> None:
    """Serve the HTTP API and web UI (uvicorn; --workers N processes share the port)."""
    import uvicorn
    from modelyard_registry.db import get_engine

    from .api import create_app

    settings = get_settings()
    from .jobs.celery_app import broker_url

    broker_url(settings)  # fail now, with a clear message, rather than on the first job
    n = workers or settings.api_workers
    # Forwarded headers are honoured only from MODELYARD_TRUSTED_PROXIES (the web package's
    # middleware), not from uvicorn's own default list.
    options = {"host": host, "port": port, "log_level": "info", "timeout_graceful_shutdown": 10,
               "proxy_headers": False, "access_log": access_log}
    if n == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    get_engine(settings.effective_database_url)  # migrate once, before the workers start
    uvicorn.run("modelyard_platform.api.app:create_app", factory=True, workers=n,
                **options)  # type: ignore[arg-type]


def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
) -> None:
    """Run jobs from the queue (a Celery worker; prefork, acks late)."""
    from modelyard_registry.db import migrate_url

    from .jobs.celery_app import QUEUE
    from .jobs.worker import make_worker_app

    settings = get_settings()
    migrate_url(settings.effective_database_url)  # schema + checkpoint tables, before the fork
    app = make_worker_app(settings)
    app.worker_main([
        "worker", "--loglevel", loglevel, "-Q", QUEUE, "--pool", "prefork",
        "--concurrency", str(concurrency or settings.worker_concurrency),
        "--hostname", f"modelyard-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
    ])


def up(host: HostOpt = "127.0.0.1", port: PortOpt = 8000,
       api_workers: WorkersOpt = None) -> None:
    """Start everything on this machine: API + worker (+ embedded Redis without REDIS_URL)."""
    from modelyard_registry.db import get_engine

    from .supervisor import Supervisor

    settings = get_settings()
    get_engine(settings.effective_database_url)  # migrate once, before the children start
    from .accounts import list_users

    with catalogue() as (session, _):
        new_key = None if auth.has_admin_key(session) else auth.create_key(
            session, team="admin", admin=True)[0]
        nobody = not list_users(session)
    sup = Supervisor(settings, host, port, api_workers=api_workers or settings.api_workers)
    try:
        redis_url = settings.redis_url or sup.start_embedded_redis()
        sup.start(redis_url)
    except BaseException:
        sup.stop()
        raise
    where = "embedded" if not settings.redis_url else "REDIS_URL"
    err.print(f"[bold]Modelyard is up[/] (database: {settings.effective_database_url}, "
              f"redis: {where})")
    err.print(f"  web UI   http://{host}:{port}/")
    err.print(f"  API      http://{host}:{port}/v1   (OpenAPI docs: http://{host}:{port}/docs)")
    if new_key:
        err.print("  first admin key (shown once, store it now):")
        out.print(new_key, soft_wrap=True)
    if nobody:
        err.print("  no web user yet: `yard users create YOU@EXAMPLE.COM --team admin --admin` "
                  "prints a one-time link to set a password (until then the web UI also "
                  "accepts the admin key)")
    err.print("Ctrl-C stops everything.")
    raise typer.Exit(sup.wait())


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="Team name (created if new).")],
    admin: Annotated[bool, typer.Option(help="May change the catalogue.")] = False,
) -> None:
    """Create a key; it is printed once, alone on stdout, and stored only as a hash."""
    with catalogue() as (session, _):
        key, _row = auth.create_key(session, team=team, admin=admin)
    typer.echo(key)


@keys_app.command("list")
def keys_list(json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Keys by prefix, team and scope (never the keys themselves)."""
    with catalogue() as (session, _):
        rows = [
            {"id": k.id, "prefix": k.prefix, "team": t.name, "admin": k.admin,
             "created_at": k.created_at, "revoked": k.revoked_at is not None}
            for k, t in auth.list_keys(session)
        ]
    if json_:
        print_json(rows)
        return
    table = Table("id", "prefix", "team", "admin", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), f"{r['prefix']}…", str(r["team"]),
                      "yes" if r["admin"] else "", "revoked" if r["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix (my_xxxxxxx).")]
                ) -> None:
    """Revoke a key: it stops working at once."""
    with catalogue() as (session, _):
        row = auth.revoke_key(session, key)
    err.print(f"revoked key {row.id} ({row.prefix}…)")


@teams_app.command("budget")
def teams_budget(
    team: str,
    usd: Annotated[str, typer.Argument(help="Monthly budget in USD, or 'none'.")],
) -> None:
    """Set a team's monthly budget; requests over it get HTTP 429."""
    from modelyard_registry.errors import InvalidInput

    try:
        value = None if usd.lower() == "none" else float(usd)
    except ValueError:
        raise InvalidInput(f"budget must be a number or 'none', got {usd!r}",
                           field="usd") from None
    with catalogue() as (session, _):
        auth.set_budget(session, team, value)
    err.print(f"team {team}: budget {'none' if value is None else f'${value:g}/month'}")


def _base_url() -> str:
    return get_settings().public_url or "http://127.0.0.1:8000"


@users_app.command("create")
def users_create(
    email: str,
    team: Annotated[str, typer.Option(help="Team name (created if new).")],
    admin: Annotated[bool, typer.Option(help="Team admin: invites people, operator pages.")]
    = False,
) -> None:
    """Add a person to a team; prints a one-time link to set their password (alone on stdout)."""
    from .accounts import ensure_user, issue_link, link_url
    from .models import LinkKind, Role

    with catalogue() as (session, settings):
        user, needs_password = ensure_user(session, email=email, team=team,
                                           role=Role.admin if admin else Role.member)
        if not needs_password:
            err.print(f"{user.email} already has a password; now in team {team}")
            return
        token = issue_link(session, user=user, kind=LinkKind.invite,
                           ttl_s=settings.invite_ttl_s)
    err.print(f"invitation for {user.email} (team {team}, expires in "
              f"{settings.invite_ttl_s / 3600:g} h; works once):")
    typer.echo(link_url(_base_url(), LinkKind.invite, token))


@users_app.command("reset")
def users_reset(email: str) -> None:
    """Print a one-time password-reset link for a person."""
    from .accounts import issue_link, link_url
    from .accounts.users import get_user
    from .models import LinkKind

    with catalogue() as (session, settings):
        token = issue_link(session, user=get_user(session, email), kind=LinkKind.reset,
                           ttl_s=settings.reset_ttl_s)
    typer.echo(link_url(_base_url(), LinkKind.reset, token))


@users_app.command("list")
def users_list(json_: Annotated[bool, typer.Option("--json")] = False) -> None:
    """People, their teams and roles, and whether they are active."""
    from .accounts import list_users

    with catalogue() as (session, _):
        rows = list_users(session)
    if json_:
        print_json([{"id": u.id, "email": u.email, "active": u.active,
                     "has_password": u.has_password,
                     "teams": [{"team": t.team, "role": t.role.value} for t in u.teams]}
                    for u in rows])
        return
    table = Table("id", "email", "teams", "status")
    for u in rows:
        status = "active" if u.active else "disabled"
        if u.active and not u.has_password:
            status = "invited"
        table.add_row(str(u.id), u.email,
                      ", ".join(f"{t.team} ({t.role.value})" for t in u.teams), status)
    out.print(table)


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a person: their web sessions end and the API keys they made are revoked."""
    from .accounts import disable_user

    with catalogue() as (session, _):
        user = disable_user(session, email)
    err.print(f"disabled {user.email}")


def register(app: typer.Typer) -> None:
    """Attach platform commands to the root `yard` app."""
    app.command()(api)
    app.command()(worker)
    app.command()(up)
    app.add_typer(keys_app, name="keys")
    app.add_typer(teams_app, name="teams")
    app.add_typer(users_app, name="users")
