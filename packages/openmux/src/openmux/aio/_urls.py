"""Small URL helpers shared by the transport modules."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split(url: str, default_port: int | None = None) -> tuple[SplitResult, str, int]:
    """`(parts, host, port)` of a `scheme://host:port/...` URL."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port if parts.port is not None else default_port
    if port is None:
        raise ValueError(f"{url!r} needs a port")
    return parts, host, port


def netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
