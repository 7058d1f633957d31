"""Cross-site guard for a daemon that runs without a token.

`--no-auth` is allowed on loopback only, but loopback is exactly what a web
page in the user's own browser can reach: any site could open a WebSocket to
ws://127.0.0.1:8022 and get a shell or drive the agent's browser (cross-site
WebSocket hijacking). Browsers always send `Origin` on a WebSocket upgrade and
pages cannot forge it, so a tokenless daemon accepts only upgrades without an
Origin (non-browser clients such as `vroom term`) or from its own origin (the
page vroomd serves). `Origin: null` (sandboxed iframes, file:// pages) is
refused too: any site can produce it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


def foreign_origin(transport_info: Mapping[str, Any]) -> str | None:
    """Why this connection comes from another site's page, or None if it does not."""
    headers = transport_info.get("headers")
    if headers is None:
        return None  # not an HTTP upgrade (TCP, TLS, QUIC, stdio): no browser behind it
    origin = headers.get("Origin")
    if not origin:
        return None
    host = headers.get("Host")
    if origin == "null" or not host or urlsplit(origin).netloc.lower() != str(host).lower():
        return f"a page from {origin} may not connect to a vroomd without a token"
    return None
