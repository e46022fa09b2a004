"""Who may use the page, and what the browser may do with it.

- **Token.** ``mailhunt serve`` prints ``http://127.0.0.1:PORT/?token=...``
  (as Jupyter does). The first request carrying the token gets it back as an
  HttpOnly, SameSite=Strict cookie and is redirected to the same address
  without it, so the token stays out of the address bar, history and
  ``Referer``. Every request (pages, static files, downloads) needs the
  cookie or the token; without either, ``401`` and nothing else. Tokens are
  compared in constant time (``hmac.compare_digest``).
- **CSRF.** Every POST carries a form field ``csrf`` derived from the token
  (an HMAC, so it is useless without the token and differs from the cookie),
  checked in constant time; a POST whose ``Origin`` is another site is refused
  before that. Either failure is ``403``.
- **Headers.** A Content-Security-Policy allowing only this server's own
  script and style files (no inline script, no inline style, nothing
  fetched from elsewhere, no framing, forms posting only here), and
  ``nosniff``, ``no-referrer``, ``no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

TOKEN_COOKIE = "mailhunt_token"
TOKEN_PARAMETER = "token"
CSRF_FIELD = "csrf"
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
UNAUTHORIZED = ("401 Unauthorized: open the address mailhunt serve printed (it carries the token), "
                "in this browser.\n")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a secret from a request with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def csrf_token(token: str) -> str:
    """The CSRF field value of the session that holds ``token``."""
    return hmac.new(token.encode("utf-8"), b"mailhunt serve csrf", hashlib.sha256).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def unauthorized() -> Response:
    return with_headers(PlainTextResponse(UNAUTHORIZED, status_code=401))


def authenticate(request: Request, token: str) -> Response | None:
    """None when the request may go on; else the response to send instead (401, or the redirect that trades
    the token in the address for the cookie)."""
    from_query = request.query_params.get(TOKEN_PARAMETER)
    if from_query is not None:
        if not same_secret(from_query, token):
            return unauthorized()
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
        return with_headers(response)
    if not same_secret(request.cookies.get(TOKEN_COOKIE), token):
        return unauthorized()
    return None


def cross_site_post(request: Request) -> bool:
    """Whether a POST comes from a page of another origin, as ``Sec-Fetch-Site`` or ``Origin`` say (a browser
    that sends neither is left to the CSRF field)."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("origin")
    if origin is None or origin == "null":  # a browser sends "null" for a same-origin form under no-referrer
        return False
    return urlsplit(origin).netloc != request.headers.get("host")
