"""What every local page of the suite (`mils view`, `mils judge serve`) does to stay closed.

- **Loopback unless a secret is configured**: a server bound to any other address must have one
  (the caller decides what: the viewer's token, the judging batch's invites).
- **The Host header is checked** on a loopback server: a web page that rebinds its own name to
  127.0.0.1 (DNS rebinding) reaches the port, but its requests name the attacker's host and are refused.
- **Headers that forbid inline script** (a Content-Security-Policy: scripts only from the server's own
  files) and sniffing, framing and referrers, on every response.
- **Request bodies are bounded**: a body over the limit is refused before it is read into memory.
- **No cross-site writes (CSRF)**: a request that changes state (POST, PUT, PATCH, DELETE) must be
  ``Content-Type: application/json`` (which a page of another origin cannot send without the
  browser asking first) and must not come from another origin (``Origin``, ``Sec-Fetch-Site``).
"""

from __future__ import annotations

import ipaddress
import json

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; style-src 'self' 'unsafe-inline'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:8765`` -> ``::1``, ``example.com:80`` -> ``example.com``)."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def cross_site_write(headers: dict[str, str], origins: tuple[str, ...] = ()) -> str | None:
    """Why a state-changing request with these (lower-cased) headers is refused, or None.
    ``origins``: the public origins a reverse proxy serves the page from (``--origin``), for a proxy
    that rewrites Host (better: ``proxy_set_header Host $host``)."""
    from urllib.parse import urlsplit

    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return "a request that changes something must be Content-Type: application/json"
    site = headers.get("sec-fetch-site", "same-origin").lower()
    if site not in ("same-origin", "none"):
        return f"a request from another site (Sec-Fetch-Site: {site}) cannot change anything here"
    origin = headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() in origins:
        return None
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != headers.get("host", "").lower()):
        return f"a request from another origin ({origin}) cannot change anything here"
    return None


class Guard:
    """ASGI middleware: the Host check (``loopback_only``), the security headers, the body limit."""

    def __init__(self, app, loopback_only: bool, max_body: int = 64 * 1024, origins: tuple[str, ...] = ()) -> None:
        self.app, self.loopback_only, self.max_body = app, loopback_only, max_body
        self.origins = tuple(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
            return await _refuse(send, 403, "this server answers requests to localhost only (Host header)")
        if scope.get("method", "GET") in UNSAFE_METHODS and (why := cross_site_write(headers, self.origins)):
            return await _refuse(send, 415 if "Content-Type" in why else 403, why)
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            return await _refuse(send, 413, f"request body over {self.max_body} bytes")
        received = 0

        async def bounded_receive():  # a chunked body has no length to check first
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:  # raised where the route reads the body: a JSON 413, not a 500
                from starlette.exceptions import HTTPException

                raise HTTPException(413, f"request body over {self.max_body} bytes")
            return message

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, bounded_receive, send_with_headers)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *[(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]]})
    await send({"type": "http.response.body", "body": body})
