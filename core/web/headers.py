"""Security headers on every response (issue 9, Low).

- ``X-Content-Type-Options: nosniff`` everywhere (page images, JSON, static files): a browser
  never guesses a type from content.
- ``Content-Security-Policy``: scripts and styles from this server only (htmx's ``hx-on``
  needs ``'unsafe-eval'``; the two ``onsubmit="return false"`` attributes of the capture
  pages are allowed by their hashes), no framing (``frame-ancestors 'none'``, and
  ``X-Frame-Options: DENY`` for older browsers), no plugins, forms posted here only.
- ``Referrer-Policy: same-origin``: record URLs (admission numbers) never go to other sites.
- ``Cache-Control: no-store`` on everything but static files: pages, JSON and page images
  carry patient data and must not stay in a shared computer's browser cache.
"""

from __future__ import annotations

CSP = ("default-src 'self'; "
       "script-src 'self' 'unsafe-eval' 'unsafe-hashes' "
       "'sha256-GZIcz60Uwd6wT3vaYke/atSr53TehbYAPepOa3d03Vw=' "
       "'sha256-2rvfFrggTCtyF5WOiTri1gDS8Boibj4Njn0e+VCBmDI='; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
       "media-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CSP.encode()),
]
NO_STORE = (b"cache-control", b"no-store")


async def security_headers(message, scope) -> None:
    """Litestar ``before_send`` hook: add the headers above to every HTTP response, errors of
    unmatched routes included (headers a handler set itself win, except that nothing but
    static files may be cached)."""
    if message["type"] != "http.response.start" or scope.get("type") != "http":
        return
    headers = list(message.get("headers") or [])
    have = {bytes(k).lower() for k, _ in headers}
    headers += [(k, v) for k, v in ALWAYS if k not in have]
    if not scope.get("path", "").startswith("/static/"):
        headers = [(k, v) for k, v in headers if bytes(k).lower() != b"cache-control"]
        headers.append(NO_STORE)
    message["headers"] = headers
