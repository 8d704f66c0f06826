"""Single sign-on pages: send the browser to the OpenID provider, and take it back.

The flow's state, nonce and PKCE verifier wait in a signed, HttpOnly cookie scoped to these
paths for ten minutes; the callback checks them before any token is fetched.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from modelyard_platform import accounts
from modelyard_platform.accounts.oidc import OidcClient, Pending, sso_user
from modelyard_platform.api.deps import ServicesDep, SessionDep
from modelyard_platform.api.session_route import SessionRoute

from .. import session as cookies
from ..deps import web_state
from ..errors import PageError
from .account import end_previous_session, safe_next, set_session_cookie

router = APIRouter(route_class=SessionRoute, include_in_schema=False)
FLOW_S = 600
PATH = "/login/sso"


def _callback_url(request: Request) -> str:
    settings = request.app.state.services.settings
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + PATH + "/callback"


@router.get(PATH)
def start(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    try:
        url, pending = OidcClient(services.settings).begin(_callback_url(request))
    except accounts.SsoFailed as exc:
        raise PageError(exc.http_status, exc.message) from exc
    response = RedirectResponse(url, status_code=303)
    value = cookies.sign_json(web_state(request).secret, {
        "state": pending.state, "nonce": pending.nonce, "verifier": pending.verifier,
        "next": safe_next(next)})
    response.set_cookie(cookies.SSO_COOKIE, value, max_age=FLOW_S, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path=PATH)
    return response


@router.get(PATH + "/callback")
def callback(request: Request, services: ServicesDep, session: SessionDep,
             code: str | None = None, state: str | None = None,
             error: str | None = None) -> Response:
    settings = services.settings
    flow = cookies.unsign_json(web_state(request).secret, request.cookies.get(cookies.SSO_COOKIE))
    if error:
        raise PageError(401, f"The identity provider refused the sign-in ({error}).")
    if flow is None or not code or not state or not {"state", "nonce", "verifier"} <= set(flow):
        raise PageError(400, "This sign-in attempt expired or was started in another browser; "
                             "start again from the sign-in page.")
    pending = Pending(state=flow["state"], nonce=flow["nonce"], verifier=flow["verifier"])
    try:
        identity = OidcClient(settings).finish(redirect_uri=_callback_url(request), code=code,
                                               state=state, pending=pending)
        user = sso_user(session, settings, identity)
    except accounts.SsoFailed as exc:
        raise PageError(exc.http_status, exc.message) from exc
    assert user.id is not None
    roles = accounts.team_roles(session, user.id)
    if not roles:
        raise PageError(403, "Your account belongs to no team yet; ask a team admin.")
    token, _ = accounts.start_session(session, ttl_s=settings.session_ttl_s, user=user,
                                      team_id=roles[0].team_id)
    end_previous_session(request, session)
    response = RedirectResponse(safe_next(flow.get("next")), status_code=303)
    set_session_cookie(request, response, token, settings.session_ttl_s)
    response.delete_cookie(cookies.SSO_COOKIE, path=PATH)
    return response
