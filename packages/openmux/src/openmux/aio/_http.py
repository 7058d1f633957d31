"""A deliberately small HTTP/1.1 server and client for WebRTC signaling.

WebRTC needs two tiny JSON POSTs (`/offer`, `/candidate`) and a static file
(`/openmux.js`). `websockets` refuses requests with a body and aiohttp is not
a dependency of aiortc, so this is the whole of HTTP we need, on a port of its
own (`start_server`) or behind a WebSocket port's dispatcher (`stream_protocol`,
see ws.py): one request per
connection (`Connection: close`), `Content-Length` bodies only, and every size
and time limit checked before anything is buffered, so a hostile client
costs at most `max_header + max_body` bytes and `read_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("openmux")

MAX_HEADER = 16 * 1024
MAX_BODY = 256 * 1024
READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes
    peername: Any = None

    def json(self) -> Any:
        """The body as JSON; `ValueError` if it is not."""
        return json.loads(self.body.decode("utf-8"))

    def bearer(self) -> str | None:
        """The `Authorization: Bearer` token, "" if the header is not Bearer, None if absent."""
        value = self.headers.get("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = HTTPStatus.OK) -> Response:
        return cls(status, json.dumps(obj).encode(), "application/json")

    @classmethod
    def text(cls, status: int, text: str = "") -> Response:
        if not text:
            known = status in HTTPStatus._value2member_map_
            text = HTTPStatus(status).phrase if known else f"HTTP {status}"
        return cls(status, text.encode() + b"\n")

    def serialize(self, head_only: bool = False) -> bytes:
        phrase = (
            HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else ""
        )
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        headers = {
            "Content-Type": self.content_type,
            "Content-Length": str(len(self.body)),
            "Cache-Control": "no-store",
            "Connection": "close",
            **self.headers,
        }
        lines += [f"{k}: {v}" for k, v in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + self.body


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


async def _read_request(reader: asyncio.StreamReader, max_header: int, max_body: int) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header too large") from None
    except asyncio.IncompleteReadError:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "connection closed in the header") from None
    if len(head) > max_header:
        raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header too large")
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text[:-4].split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed request line") from None
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.x only")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "only Content-Length bodies")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit() or len(length_text) > 12:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "bad Content-Length")
    length = int(length_text)
    if length > max_body:
        raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {max_body} bytes")
    try:
        body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "connection closed in the body") from None
    path, _, query = target.partition("?")
    if not path.startswith("/"):
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "origin-form targets only")
    return Request(method, path, query, headers, body)


Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def connection_handler(
    handler: Handler,
    *,
    max_header: int = MAX_HEADER,
    max_body: int = MAX_BODY,
    read_timeout: float = READ_TIMEOUT,
) -> Connection:
    """The `asyncio.start_server` callback serving one request per connection with `handler`."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        response: Response
        head_only = False
        try:
            try:
                async with asyncio.timeout(read_timeout):
                    request = await _read_request(reader, max_header, max_body)
            except TimeoutError:
                response = Response.text(HTTPStatus.REQUEST_TIMEOUT)
            except _BadRequest as exc:
                response = Response.text(exc.status, str(exc))
            else:
                request = Request(
                    request.method,
                    request.path,
                    request.query,
                    request.headers,
                    request.body,
                    writer.get_extra_info("peername"),
                )
                head_only = request.method == "HEAD"
                try:
                    response = await handler(request)
                except Exception:
                    logger.exception("HTTP handler failed on %s %s", request.method, request.path)
                    response = Response.text(HTTPStatus.INTERNAL_SERVER_ERROR)
            writer.write(response.serialize(head_only))
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            logger.debug("HTTP connection lost: %r", exc)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    return on_connection


def stream_protocol(on_connection: Connection, limit: int = MAX_HEADER) -> asyncio.Protocol:
    """A protocol running `on_connection` for a transport someone else accepted.

    What `asyncio.start_server` builds per connection; a listener that first
    looks at the bytes (the shared WebSocket + signaling port) hands the
    transport to it with `transport.set_protocol()`.
    """
    return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=limit), on_connection)


async def start_server(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl: _ssl.SSLContext | None = None,
    max_header: int = MAX_HEADER,
    max_body: int = MAX_BODY,
    read_timeout: float = READ_TIMEOUT,
) -> asyncio.Server:
    """Serve `handler` on host:port; one request per connection."""
    on_connection = connection_handler(
        handler, max_header=max_header, max_body=max_body, read_timeout=read_timeout
    )
    return await asyncio.start_server(
        on_connection, host, port, ssl=ssl, limit=max_header, reuse_address=True
    )


async def request(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    headers: Mapping[str, str] | None = None,
    ssl: _ssl.SSLContext | None = None,
    max_body: int = MAX_BODY,
) -> tuple[int, bytes]:
    """One request; returns `(status, body)`. `url` is `http(s)://host:port/path`."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    if secure and ssl is None:
        ssl = _ssl.create_default_context()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl if secure else None, limit=MAX_HEADER
    )
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            host_header += f":{parts.port}"
        lines = [
            f"{method} {target} HTTP/1.1",
            f"Host: {host_header}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if body:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1")[:-4].split("\r\n")
            status = int(status_line.split(" ", 2)[1])
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError, IndexError):
            raise ConnectionError(f"malformed HTTP response from {url}") from None
        length: int | None = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        if length is not None:
            if length > max_body:
                raise ConnectionError(f"HTTP response body over {max_body} bytes")
            data = await reader.readexactly(length)
        else:  # read to EOF
            chunks: list[bytes] = []
            size = 0
            while chunk := await reader.read(65536):
                size += len(chunk)
                if size > max_body:
                    raise ConnectionError(f"HTTP response body over {max_body} bytes")
                chunks.append(chunk)
            data = b"".join(chunks)
        return status, data
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
