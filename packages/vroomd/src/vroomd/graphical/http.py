"""The browser page's HTTP routes on the WebSocket port: `/` and `/static/...`.

websockets answers plain HTTP requests through `process_request`; openmux's
WebSocket listener passes the paths that are not OpenMux endpoints to
`respond()` (the `http_handler` serve option). Files are the ES modules in
`static/` plus `openmux.js` from the openmux package; nothing else on disk
is reachable (no path is ever joined from the request).
"""

from __future__ import annotations

from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' blob: data:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type), read once."""
    from openmux.aio.static import CONTENT_TYPE, script

    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC.iterdir()):
        kind = TYPES.get(path.suffix)
        if path.is_file() and kind is not None:
            files[f"/static/{path.name}"] = (path.read_bytes(), kind)
    files["/static/openmux.js"] = (script(), CONTENT_TYPE)
    index = files.get("/static/index.html")
    if index is not None:
        files["/"] = files["/index.html"] = index
    return files


def respond(request: Any) -> Any:
    """A websockets `Response` for one of our paths, None for any other."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    path = request.path.split("?", 1)[0].split("#", 1)[0]
    found = _files().get(path)
    if found is None:
        return None
    body, kind = found
    headers = Headers({"Content-Type": kind, "Content-Length": str(len(body)), **SECURITY_HEADERS})
    status = HTTPStatus.OK
    return Response(status.value, status.phrase, headers, body)
