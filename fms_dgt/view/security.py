"""The viewer's guards: who may ask (a random token), what may be asked (GET only) and what
may be read (nothing outside the output folder).

The token is printed with the URL at start-up. A first visit carries it as ``?token=``;
the answer sets it as an HttpOnly, SameSite=Strict cookie so the pages' own links and the
live-refresh requests need not repeat it. Every route needs it, static assets included: a
page of another site open in the same browser can neither read the viewer nor guess its
address's token, and nothing on another machine can reach a loopback server at all.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

COOKIE = "dgt_view_token"
SAFE_METHODS = ("GET", "HEAD")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; a name is not resolved (it could
    resolve to anything), so only ``localhost`` counts."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def contained(root: Path, path: Path) -> Path | None:
    """``path`` with every symlink resolved, if it is ``root`` or inside it, else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    root_real = root.resolve()
    return real if real == root_real or real.is_relative_to(root_real) else None


class TokenGuard:
    """ASGI middleware: refuse other methods than GET/HEAD (405) and any request without
    the token (401), before the application sees it."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # websockets: none served
        if scope["method"] not in SAFE_METHODS:
            await _plain(send, 405, "read-only viewer: only GET is served", [(b"allow", b"GET, HEAD")])
            return
        given = _query_token(scope)
        from_query = given is not None
        if given is None:
            given = _cookie_token(scope)
        if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
            await _plain(send, 401, "access token missing or wrong: open the URL the viewer printed")
            return
        if not from_query:
            await self.app(scope, receive, send)
            return
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _cookie_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    # everything the pages use is served by the viewer itself; plotly needs eval-free inline
    # styles only, so scripts come from 'self' and the one inline data block per chart
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
        b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding a content-security policy that allows no other origin (so a
    page works offline and cannot load or send anything elsewhere) and no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
