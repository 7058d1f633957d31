"""An asyncio client for vroomd's terminals, shaped like asyncssh's.

    import vroom_terminal.aio

    async with vroom_terminal.aio.connect("ws://127.0.0.1:8022", token=TOKEN) as conn:
        result = await conn.run("uname -a")
        print(result.exit_status, result.stdout)

        process = await conn.create_process("cat", raw=True)
        process.stdin.write(b"hello")
        process.stdin.write_eof()
        print(await process.stdout.read())
        await process.wait()

Every process is one VROOM-Terminal session on the connection, with its
own PTY. Output is acknowledged as it is read (or, with `on_output=`, once
the callback returns), so a slow reader holds vroomd back within the
credit window. See docs/terminal-client.md.

Kept out of `vroom term`'s start-up path and of the sans-IO modules: this
is the one part of vroom_terminal that imports asyncio.
"""

from __future__ import annotations

from .connection import DEFAULT_ACK_EVERY, DEFAULT_WINDOW, TerminalConnection, connect
from .errors import (
    AuthError,
    ClientError,
    ConnectError,
    ConnectionLost,
    ProcessError,
    PtyRefusedError,
    ServerBusyError,
    SessionError,
    StartTimeout,
)
from .process import CompletedProcess, OutputCallback, TerminalProcess
from .streams import InputWriter, OutputReader

__all__ = [
    "DEFAULT_ACK_EVERY",
    "DEFAULT_WINDOW",
    "AuthError",
    "ClientError",
    "CompletedProcess",
    "ConnectError",
    "ConnectionLost",
    "InputWriter",
    "OutputCallback",
    "OutputReader",
    "ProcessError",
    "PtyRefusedError",
    "ServerBusyError",
    "SessionError",
    "StartTimeout",
    "TerminalConnection",
    "TerminalProcess",
    "connect",
]
