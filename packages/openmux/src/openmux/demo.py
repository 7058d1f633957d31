"""`python -m openmux.demo`: OpenMux end to end between two processes.

It exists to show, with nothing but the standard library and the sans-IO core,
what every real transport in `openmux.aio` does: bytes from a socket go into
`Connection.receive_data`, events come out, `data_to_send` goes back to the
socket, and `get_timer`/`handle_timer` drive the clock.

The parent listens on 127.0.0.1 (a free port unless `--port`), starts
`sys.executable -m openmux.demo --client PORT` as a child process with a fresh
random token in its environment, and serves that one connection. The client
sends the `OMUX` magic and HELLO with the token, opens a dynamic channel
`greeting`, sends a message, prints the server's upper-cased echo and closes
with CLOSE 1000. Both sides log what happens, one line per step, prefixed
`server:` or `client:`. Exit status 0 when the whole exchange went as planned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable, Sequence

from .codes import CloseCode
from .config import Config
from .connection import Connection
from .events import (
    ChannelOpened,
    ChannelRejected,
    ConnectionTerminated,
    Event,
    HandshakeCompleted,
    MessageReceived,
)

HOST = "127.0.0.1"
TOKEN_ENV = "OPENMUX_DEMO_TOKEN"
CHANNEL = "greeting"
GREETING_TYPE = 0x01
GREETING = "hello, openmux"
APPLICATION = "openmux-demo/0.1"
TIMEOUT = 10.0
"""Seconds for the whole exchange; the demo fails rather than hang."""

READ_SIZE = 64 * 1024
CLIENT_COMMAND = "python -m openmux.demo --client"


class DemoError(Exception):
    """Ends the demo with a one-line message and exit status 1."""


def log(side: str, message: str) -> None:
    # flush: the two processes share the terminal, and lines must not wait in a buffer.
    print(f"{side}: {message}", flush=True)


def _oserror(exc: OSError) -> str:
    # asyncio words connect errors as "Connect call failed (...)": say the cause.
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _version(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


async def run_connection(
    conn: Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_event: Callable[[Event], None],
) -> ConnectionTerminated:
    """The whole I/O layer of an OpenMux stream transport, in one loop."""
    clock = asyncio.get_running_loop().time
    conn.initiate(clock())
    try:
        while True:
            out = conn.data_to_send()
            if out:
                writer.write(out)
                await writer.drain()
            timer = conn.get_timer()
            timeout = None if timer is None else max(0.0, timer - clock())
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            except TimeoutError:
                events = conn.handle_timer(clock())
            else:
                now = clock()
                events = conn.receive_data(data, now) if data else conn.connection_lost(now)
            for event in events:
                on_event(event)
                if isinstance(event, ConnectionTerminated):
                    # Whatever the close left queued (our answering CLOSE) goes out first.
                    out = conn.data_to_send()
                    if out:
                        writer.write(out)
                        await writer.drain()
                    return event
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


# ------------------------------------------------------------------ client


async def client(port: int, token: str | None) -> bool:
    """Connect, open `greeting`, send, await the echo, close with 1000."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as exc:
        raise DemoError(f"cannot connect to {HOST}:{port}: {_oserror(exc)}") from None
    conn = Connection(Config(is_client=True, token=token, application=APPLICATION), mode="stream")
    clock = asyncio.get_running_loop().time
    echoed: list[bytes] = []
    log("client", f"connected to {HOST}:{port}; sending the OMUX magic and HELLO with a token")

    def on_event(event: Event) -> None:
        if isinstance(event, HandshakeCompleted):
            log(
                "client",
                f"handshake completed: version {_version(event.version)}, "
                f"maxMessageSize {event.max_message_size}",
            )
            request_id = conn.open_channel(CHANNEL)
            log("client", f"asked for channel {CHANNEL!r} (OPEN_CHANNEL requestId {request_id})")
        elif isinstance(event, ChannelOpened) and event.channel.name == CHANNEL:
            channel_id = event.channel.id
            log("client", f"channel {CHANNEL!r} opened with id {channel_id}")
            conn.send_message(channel_id, GREETING_TYPE, GREETING.encode())
            log("client", f"sent {GREETING!r} on channel {channel_id}")
        elif isinstance(event, ChannelRejected):
            log("client", f"channel {event.name!r} rejected: {event.code} {event.reason}")
            conn.close(CloseCode.NORMAL, "channel rejected", clock())
        elif isinstance(event, MessageReceived):
            echoed.append(event.data)
            text = event.data.decode(errors="replace")
            log("client", f"received {text!r} on channel {event.channel_id}")
            log("client", "closing with CLOSE 1000")
            conn.close(CloseCode.NORMAL, "done", clock())
        elif isinstance(event, ConnectionTerminated):
            who = "by the server" if event.by_peer else "(the server answered our CLOSE)"
            log("client", f"connection closed {who}: code {event.code} {event.reason!r}")

    end = await run_connection(conn, reader, writer, on_event)
    return (
        end.code == CloseCode.NORMAL and not end.by_peer and echoed == [GREETING.upper().encode()]
    )


# ------------------------------------------------------------------ server


class DemoServer:
    """Serves the first connection; the echo itself is a few lines in `on_event`."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.busy = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.busy:  # one demo, one client
            writer.close()
            return
        self.busy = True
        conn = Connection(Config(is_client=False, token=self.token), mode="stream")
        echoed = False

        def on_event(event: Event) -> None:
            nonlocal echoed
            if isinstance(event, HandshakeCompleted):
                log(
                    "server",
                    f"handshake completed: token accepted, application "
                    f"{event.application!r}, version {_version(event.version)}",
                )
            elif isinstance(event, ChannelOpened):
                log("server", f"channel {event.channel.name!r} opened with id {event.channel.id}")
            elif isinstance(event, MessageReceived):
                reply = event.data.upper()
                log(
                    "server",
                    f"received {event.data.decode(errors='replace')!r} on channel "
                    f"{event.channel_id}; echoing {reply.decode(errors='replace')!r}",
                )
                conn.send_message(event.channel_id, event.type, reply)
                echoed = True
            elif isinstance(event, ConnectionTerminated):
                who = "by the client" if event.by_peer else "by the server"
                log("server", f"connection closed {who}: code {event.code} {event.reason!r}")

        try:
            end = await run_connection(conn, reader, writer, on_event)
        except Exception as exc:  # reported by the parent as one line
            if not self.done.done():
                self.done.set_exception(DemoError(f"server connection failed: {exc}"))
            return
        if not self.done.done():
            self.done.set_result(echoed and end.by_peer and end.code == CloseCode.NORMAL)


async def serve(
    port: int,
    spawn: bool = True,
    token: str | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> bool:
    """Listen, start the client process (unless `spawn` is false), serve it.

    `on_listening` gets the bound port (for a caller that starts the client).
    """
    token = token or secrets.token_urlsafe(16)
    demo = DemoServer(token)
    try:
        server = await asyncio.start_server(demo.handle, HOST, port)
    except OSError as exc:
        raise DemoError(f"cannot listen on {HOST}:{port}: {_oserror(exc)}") from None
    async with server:
        bound = server.sockets[0].getsockname()[1]
        if on_listening is not None:
            on_listening(bound)
        if not spawn:
            log("server", f"listening on {HOST}:{bound}; waiting for a client")
            if os.environ.get(TOKEN_ENV) != token:
                log("server", f"run: {TOKEN_ENV}={token} {CLIENT_COMMAND} {bound}")
            return await demo.done
        log("server", f"listening on {HOST}:{bound}; starting the client process")
        env = dict(os.environ, **{TOKEN_ENV: token})
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "openmux.demo", "--client", str(bound), env=env
        )
        try:
            status = await asyncio.wait_for(child.wait(), TIMEOUT)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise DemoError(f"the client process did not finish within {TIMEOUT:g} s") from None
        if status != 0:
            raise DemoError(f"the client process failed (exit status {status})")
        try:
            ok = await asyncio.wait_for(demo.done, TIMEOUT)
        except TimeoutError:
            raise DemoError("the client exited without talking to the server") from None
        log("server", f"client process exited with status {status}")
        return ok


# -------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m openmux.demo",
        description=(
            "OpenMux end to end, standard library only: this process listens on "
            f"{HOST}, starts a client process (`--client PORT`) that sends HELLO with "
            f"a token, opens channel {CHANNEL!r} and sends a message; the server "
            "echoes it upper-cased and the client closes with CLOSE 1000."
        ),
        epilog=f"The client takes its token from ${TOKEN_ENV}. Exit status 0 on success.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port for the server to listen on (default: a free one)",
    )
    parser.add_argument(
        "--client",
        type=int,
        metavar="PORT",
        help=f"run as the client, connecting to {HOST}:PORT",
    )
    parser.add_argument(
        "--no-spawn",
        action="store_true",
        help="serve one connection without starting a client (run --client yourself)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a TCP port")
    if args.client is not None and not 0 < args.client <= 65535:
        parser.error(f"--client: {args.client} is not a TCP port")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.client is not None:
            token = os.environ.get(TOKEN_ENV) or None
            ok = asyncio.run(asyncio.wait_for(client(args.client, token), TIMEOUT))
            side = "client"
        else:
            token = os.environ.get(TOKEN_ENV) if args.no_spawn else None
            ok = asyncio.run(serve(args.port, spawn=not args.no_spawn, token=token))
            side = "server"
    except DemoError as exc:
        print(f"openmux.demo: {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"openmux.demo: no answer within {TIMEOUT:g} s", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not ok:
        print(f"openmux.demo: {side}: the exchange did not complete as expected", file=sys.stderr)
        return 1
    log(side, "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
