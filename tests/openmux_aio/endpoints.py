"""Conformance endpoints: one running `peer` server reachable over one transport.

An `Endpoint` is an async context manager made with the *server* options
(`token=`, `ping_interval=`, ...). It offers:
- `connect(**client_options) -> Session`
- `cut()`: the peer goes silent without closing the transport (only a ping
  timeout can notice); `kill()`: the peer dies abruptly (socket reset, process
  killed);
- `raw_exchange(items) -> RawResult`: send raw frames (bytes; `str` = a text
  message where that exists) from a non-OpenMux client and collect what the
  server answers until it closes. Stream transports prefix the `OMUX` magic
  unless `magic=False`.

QUIC/WebRTC endpoints subclass `ServerEndpoint` in their own files and are
registered in `conftest.py`.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import signal
import ssl
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import openmux.aio as aio
from openmux import MAGIC, FrameReader

from . import peer

PEER = str(Path(peer.__file__).resolve())


@dataclass
class RawResult:
    frames: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    ws_close_code: int | None = None

    def control(self, type_: int) -> list[dict[str, Any]]:
        """JSON bodies of the channel-0 frames of one type."""
        return [json.loads(f[3]) for f in self.frames if f[0] == 0 and f[1] == type_]


@cache
def certificate() -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1/localhost, made at test time."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tempfile.mkdtemp(prefix="openmux-test-cert-")
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def server_ssl() -> ssl.SSLContext:
    cert, key = certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def client_ssl() -> ssl.SSLContext:
    cert, _ = certificate()
    return ssl.create_default_context(cafile=cert)


class Endpoint:
    name: ClassVar[str] = "?"
    stream: ClassVar[bool] = True
    """Byte-stream transport (raw_exchange concatenates; the OMUX magic applies)."""

    def __init__(self, **server_options: Any) -> None:
        self.server_options = server_options

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def connect(self, **client_options: Any) -> aio.Session:
        raise NotImplementedError

    async def cut(self) -> None:
        raise NotImplementedError

    async def kill(self) -> None:
        raise NotImplementedError

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        raise NotImplementedError


class Proxy:
    """A loopback TCP relay that can go silent (`cut`) or reset everything (`kill`)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.silent = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._pairs.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while not self.silent:
                data = await src.read(1 << 16)
                if not data or self.silent:
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        if not self.silent:
            dst.close()
        else:
            await asyncio.Event().wait()  # hold the sockets open, forward nothing

    def cut(self) -> None:
        self.silent = True

    def kill(self) -> None:
        for a, b in self._pairs:
            for w in (a, b):
                w.transport.abort()
        self._pairs.clear()

    async def close(self) -> None:
        self.kill()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class ServerEndpoint(Endpoint):
    """An in-process `openmux.aio.serve()` server; clients go through a `Proxy`
    when the transport runs over TCP (`proxied`), so cut/kill are real sockets."""

    listen_url: ClassVar[str] = ""
    scheme: ClassVar[str] = ""
    proxied: ClassVar[bool] = True

    def __init__(self, **server_options: Any) -> None:
        super().__init__(**server_options)
        self.server: aio.Server | None = None
        self.proxy: Proxy | None = None

    def extra_server_options(self) -> dict[str, Any]:
        return {}

    def extra_client_options(self) -> dict[str, Any]:
        return {}

    async def __aenter__(self) -> ServerEndpoint:
        options = {"channel_policy": peer.policy, **self.extra_server_options()}
        options.update(self.server_options)
        self.server = await aio.serve(peer.handler, [self.listen_url], **options)
        if self.proxied:
            host, port = self.address
            self.proxy = Proxy((host, port))
            await self.proxy.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proxy is not None:
            await self.proxy.close()
        assert self.server is not None
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 10)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url(self.scheme)

    @property
    def address(self) -> tuple[str, int]:
        rest = self.url.split("://", 1)[1].split("/", 1)[0]
        host, port = rest.rsplit(":", 1)
        return host, int(port)

    def client_url(self) -> str:
        if self.proxy is None:
            return self.url
        host, port = self.address
        return self.url.replace(f"{host}:{port}", f"127.0.0.1:{self.proxy.port}", 1)

    async def connect(self, **client_options: Any) -> aio.Session:
        options = {**self.extra_client_options(), **client_options}
        return await aio.connect(self.client_url(), **options)

    async def cut(self) -> None:
        assert self.proxy is not None
        self.proxy.cut()

    async def kill(self) -> None:
        assert self.proxy is not None
        self.proxy.kill()


class TcpEndpoint(ServerEndpoint):
    name = "tcp"
    listen_url = "tcp://127.0.0.1:0"
    scheme = "tcp"

    async def _open_raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(*self.address)

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        reader, writer = await self._open_raw()
        data = b"".join(i.encode() if isinstance(i, str) else i for i in items)
        writer.write((MAGIC if magic else b"") + data)
        received = b""
        try:
            async with asyncio.timeout(10):
                while chunk := await reader.read(1 << 16):
                    received += chunk
        except ConnectionError:
            pass
        writer.close()
        if received.startswith(MAGIC):
            received = received[len(MAGIC) :]
        frames = FrameReader(0).feed(received)
        return RawResult(frames=frames)


class TlsEndpoint(TcpEndpoint):
    name = "tls"
    listen_url = "tls://127.0.0.1:0"
    scheme = "tls"

    def extra_server_options(self) -> dict[str, Any]:
        return {"ssl": server_ssl()}

    def extra_client_options(self) -> dict[str, Any]:
        return {"ssl": client_ssl()}

    async def _open_raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(*self.address, ssl=client_ssl())


class WsEndpoint(ServerEndpoint):
    name = "ws"
    listen_url = "ws://127.0.0.1:0/omux"
    scheme = "ws"
    stream = False

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        from openmux import decode_message
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        result = RawResult()
        ssl_context = client_ssl() if self.url.startswith("wss:") else None
        async with connect(self.url, compression=None, max_size=None, ssl=ssl_context) as ws:
            for item in items:
                await ws.send(item)
            try:
                async with asyncio.timeout(10):
                    async for message in ws:
                        assert isinstance(message, bytes)
                        result.frames.append(decode_message(message))
            except ConnectionClosed:
                pass
            result.ws_close_code = ws.close_code
        return result


class WssEndpoint(WsEndpoint):
    name = "wss"
    listen_url = "wss://127.0.0.1:0/omux"
    scheme = "wss"

    def extra_server_options(self) -> dict[str, Any]:
        return {"ssl": server_ssl()}

    def extra_client_options(self) -> dict[str, Any]:
        return {"ssl": client_ssl()}


class StdioEndpoint(Endpoint):
    """Each connect spawns `peer.py` as a child serving over its stdin/stdout."""

    name = "stdio"

    def __init__(self, **server_options: Any) -> None:
        super().__init__(**server_options)
        self.sessions: list[aio.Session] = []

    def argv(self) -> list[str]:
        return [sys.executable, PEER, json.dumps(self.server_options)]

    async def connect(self, **client_options: Any) -> aio.Session:
        session = await aio.connect_stdio(self.argv(), **client_options)
        self.sessions.append(session)
        return session

    def _pid(self) -> int:
        return int(self.sessions[-1].transport_info["pid"])

    async def cut(self) -> None:
        os.kill(self._pid(), signal.SIGSTOP)

    async def kill(self) -> None:
        os.kill(self._pid(), signal.SIGKILL)

    async def __aexit__(self, *exc: object) -> None:
        for session in self.sessions:
            pid = int(session.transport_info["pid"])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process = session.transport_info["process"]
            process.close()

    async def raw_exchange(self, items: list[bytes | str], magic: bool = True) -> RawResult:
        process = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        data = b"".join(i.encode() if isinstance(i, str) else i for i in items)
        process.stdin.write((MAGIC if magic else b"") + data)
        async with asyncio.timeout(10):
            received = await process.stdout.read()
            process.stdin.close()
            await process.wait()
        if received.startswith(MAGIC):
            received = received[len(MAGIC) :]
        return RawResult(frames=FrameReader(0).feed(received))
