"""Cross-site request forgery defences for the console's forms."""

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from records.core.security import tokens_equal

_SESSION_KEY = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(request: Request) -> str:
    """This session's token, made on first use; forms carry it in a hidden field."""
    token = request.session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_SESSION_KEY] = token
    return token


def csrf_valid(request: Request, submitted: object) -> bool:
    """Whether a submitted token is this session's token."""
    expected = request.session.get(_SESSION_KEY)
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and tokens_equal(submitted, expected)
    )


class SameOriginMiddleware:
    """Refuse state-changing requests that a browser says come from another site.

    Covers sqladmin's own create/edit/delete forms, which carry no token; together with the
    SameSite=strict session cookie this stops cross-site posts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Origin (or Referer) of unsafe requests against the Host."""
        if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
            request = Request(scope)
            if not _same_origin(request):
                response = PlainTextResponse("请求来源不对，已拒绝。", status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        # Non-browser clients send neither; the session cookie alone cannot be forged.
        return source is None
    # Behind a reverse proxy the browser's host may arrive as X-Forwarded-Host.
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return urlsplit(source).netloc in hosts - {None}
