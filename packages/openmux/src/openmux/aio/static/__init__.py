"""Files served to browsers: `openmux.js`, the dependency-free ES module client.

Servers that host a browser page serve it at `/openmux.js` (the WebRTC
signaling server does); anything else can copy it from `static_path()`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCRIPT = "openmux.js"
CONTENT_TYPE = "text/javascript; charset=utf-8"


def static_path() -> Path:
    """The folder holding `openmux.js` inside the installed package."""
    return Path(__file__).resolve().parent


@cache
def script() -> bytes:
    """The bytes of `openmux.js` (read once)."""
    return (static_path() / SCRIPT).read_bytes()


__all__ = ["CONTENT_TYPE", "SCRIPT", "script", "static_path"]
