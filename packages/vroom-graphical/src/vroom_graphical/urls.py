"""The House URL rule: NAVIGATE (and COMMAND navigate) go to http(s) only,
unless the server was configured to allow more schemes.

file:, chrome:, javascript: and data: would let a remote user read the
agent's disk, reach browser internals or run script in the page's origin;
refusing them is cheap, and done here so that every server gets it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

from .errors import ErrorCode, ProtocolError

DEFAULT_SCHEMES = ("http", "https")
_HOST_PORT = re.compile(r"[^/:?#\s]+:[0-9]+(?:[/?#].*)?", re.DOTALL)


def check_url(url: str, allowed_schemes: Collection[str] = DEFAULT_SCHEMES) -> str:
    """The URL to load, or ProtocolError 403 naming the refused scheme.

    Like an address bar, a URL with no scheme gets `https://` (`host:port`
    gets `http://`, as it is nearly always a local dev server).
    """
    text = url.strip()
    if not text:
        raise ProtocolError("empty URL", ErrorCode.BAD_MESSAGE)
    if _HOST_PORT.fullmatch(text):
        text = "http://" + text
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError as exc:
        raise ProtocolError(f"invalid URL: {exc}", ErrorCode.BAD_MESSAGE) from None
    if not scheme:
        text = "https://" + text.lstrip("/")
        scheme = "https"
    if scheme not in {s.lower() for s in allowed_schemes}:
        raise ProtocolError(
            f"navigation to {scheme}: URLs is not allowed on this server", ErrorCode.FORBIDDEN
        )
    return text
