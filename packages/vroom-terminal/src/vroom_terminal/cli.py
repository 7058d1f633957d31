"""`vroom term`: a remote shell or command over VROOM-Terminal, like ssh.

    vroom term ws://127.0.0.1:8022            interactive login shell
    vroom term host -- make -j4                a command (EXEC), pipes stay byte-exact
    vroom term -t tcp://host:2222 -- htop      force an interactive PTY

The protocol's state machine is the sans-IO `TerminalClient`; `TermCore`
holds everything else a run does but the I/O loop. tcp://, ws://, tls://
and wss:// run on a `select.poll()` loop with no asyncio (`termloop`, on
`openmux.polled`); QUIC, proxies and redirects on asyncio (`TermClient`,
on openmux.aio);
VROOM_ASYNCIO=1 forces the latter. Start-up is kept lean: heavy modules
are imported only once the arguments are known, since the time to the
first prompt byte is what a user feels.

Exit status: the remote command's, 128+N when it died of signal N, 255 when
vroom term itself failed (cannot connect, auth refused, PTY refused, server
limit), each failure explained in one line on stderr, like ssh.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import argparse
    import asyncio
    from collections.abc import Callable, Coroutine

    from openmux.aio import Session

    from .capabilities import CapabilityOffer
    from .client import TerminalClient
    from .events import TerminalEvent

FAILURE = 255
DEFAULT_WS_PORT = 8022
SCHEMES = ("ws", "wss", "tcp", "tls", "quic")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
ACK_EVERY = 128 * 1024
DEFAULT_TIMEOUT = 10.0
WINDOW = 1024 * 1024


class Failure(Exception):
    """One line for stderr, exit status 255."""


# ----------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="vroom",
        description="VROOM client. `vroom term DEST [-- COMMAND ...]`: a remote terminal.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    term = sub.add_parser(
        "term",
        help="open a shell or run a command on a vroomd (like ssh)",
        description=(
            "Open a login shell on a vroomd, or run COMMAND there (like ssh). DEST is a URL "
            "(ws://host:8022, wss://, tcp://host:2222, tls://, quic://host:4433) or "
            "[user@]host[:port], short for ws://host:port (port 8022)."
        ),
        epilog=(
            "The token comes from $VROOM_TOKEN, else --token-file, else (for a vroomd on this "
            "machine) vroomd's own token file. Exit status: the remote command's; 128+N if it "
            "died of signal N; 255 if vroom term failed. Environment: VROOM_BUSY_POLL_US "
            "(how long to busy-poll for a keystroke's echo, default 500; 0: never), "
            "VROOM_ASYNCIO=1 (the asyncio driver for every transport)."
        ),
    )
    term.add_argument("dest", metavar="DEST", help="where vroomd listens")
    term.add_argument("remote", nargs=argparse.REMAINDER, metavar="COMMAND", help="what to run")
    term.add_argument(
        "-t",
        dest="force_tty",
        action="store_true",
        help="force an interactive PTY (default: only when stdin and stdout are terminals; "
        "otherwise the remote PTY is raw, so pipes and files stay byte-exact)",
    )
    term.add_argument(
        "-e",
        dest="env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a remote environment variable (the server's allow-list applies)",
    )
    term.add_argument("--token-file", metavar="PATH", help="file holding the token")
    term.add_argument(
        "--cacert", metavar="PEM", help="trust this certificate (tls://, wss://, quic://)"
    )
    term.add_argument(
        "--connect-timeout",
        "--timeout",
        dest="timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up if no session (connection and handshake) within SECONDS (default 10)",
    )
    return parser


def parse_common(argv: list[str]) -> Any:
    """`term DEST` and `term DEST -- COMMAND ...`, the forms typed most, as
    the namespace argparse would make, without argparse: importing it and
    building the parser is ~6 ms of a start that should feel instant. Any
    other form (options, help, errors) returns None and goes to argparse."""
    if len(argv) < 2 or argv[0] != "term" or not argv[1] or argv[1].startswith("-"):
        return None
    rest = argv[2:]
    if rest and rest[0] != "--":
        return None
    from types import SimpleNamespace

    return SimpleNamespace(
        command="term",
        dest=argv[1],
        remote=rest[1:],  # argparse drops the first "--" before a REMAINDER
        force_tty=False,
        env=[],
        token_file=None,
        cacert=None,
        timeout=DEFAULT_TIMEOUT,
    )


def parse_dest(dest: str) -> tuple[str, str | None]:
    """(url, username) from a URL or `[user@]host[:port]`."""
    if "://" in dest:
        scheme = dest.split("://", 1)[0].lower()
        if scheme not in SCHEMES:
            raise Failure(f"unsupported scheme {scheme!r} in {dest!r} (use {', '.join(SCHEMES)})")
        return dest, None
    user: str | None = None
    if "@" in dest:
        user, dest = dest.rsplit("@", 1)
    host, port = dest, str(DEFAULT_WS_PORT)
    if dest.startswith("["):
        end = dest.find("]")
        if end < 0:
            raise Failure(f"bad address {dest!r}")
        host, rest = dest[: end + 1], dest[end + 1 :]
        if rest.startswith(":"):
            port = rest[1:]
    elif dest.count(":") == 1:
        host, port = dest.split(":")
    if not host or not port.isdigit():
        raise Failure(f"bad destination {dest!r}: expected a URL or [user@]host[:port]")
    return f"ws://{host}:{port}", user


def _host_of(url: str) -> str:
    from openmux.urls import split_url

    try:
        return split_url(url).host
    except ValueError:
        return ""


def _vroomd_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "vroomd")


def find_token(url: str, token_file: str | None) -> str | None:
    token = os.environ.get("VROOM_TOKEN")
    if token:
        return token.strip()
    path = token_file
    if path is None:
        if _host_of(url) not in LOOPBACK:
            return None
        path = os.path.join(_vroomd_state_dir(), "token")
        if not os.path.exists(path):
            return None
    try:
        with open(path) as fp:
            return fp.read().strip() or None
    except OSError as exc:
        raise Failure(f"cannot read the token file {path}: {exc.strerror}") from None


# -------------------------------------------------------------- the offer


def build_offer(env: dict[str, str] | os._Environ[str], interactive: bool) -> CapabilityOffer:
    """What the local terminal can do, from TERM, COLORTERM and the variables
    terminals set to identify themselves; conservative when unknown."""
    from .capabilities import (
        CapabilityOffer,
        ExtensionsOffer,
        KittyKeyboardOffer,
        KittyOffer,
        TerminalInfo,
    )

    term = env.get("TERM", "") if interactive else ""
    program = env.get("TERM_PROGRAM", "").lower()
    colorterm = env.get("COLORTERM", "").lower()
    kitty = "KITTY_WINDOW_ID" in env or term == "xterm-kitty" or program == "kitty"
    ghostty = program == "ghostty" or term == "xterm-ghostty"
    wezterm = program == "wezterm" or "WEZTERM_PANE" in env
    iterm = program == "iterm.app" or "ITERM_SESSION_ID" in env
    foot = term.startswith("foot")
    alacritty = term == "alacritty" or "ALACRITTY_WINDOW_ID" in env
    xtermish = interactive and term not in ("", "dumb") and not term.startswith("vt")
    modern = kitty or ghostty or wezterm or foot or iterm or alacritty
    kitty_kb = kitty or ghostty or wezterm or foot or alacritty
    truecolor = colorterm in ("truecolor", "24bit") or modern
    features: list[str] = []
    if xtermish:
        features += ["bracketed_paste", "focus_reporting"]
    if modern:
        features += ["osc52_clipboard", "hyperlinks"]
    if kitty or ghostty or wezterm:
        features.append("progress_indicator")
    return CapabilityOffer(
        terminal=TerminalInfo(term, "", truecolor and xtermish),
        kitty=KittyOffer(
            KittyKeyboardOffer((1, 2, 3), 3) if kitty_kb else KittyKeyboardOffer(),
            graphics=kitty or ghostty or wezterm,
            sixel=foot or wezterm or term.startswith("mlterm"),
            synchronized_output=modern,
        ),
        mouse=("sgr", "xterm") if xtermish else (),
        features=tuple(features),
        extensions=ExtensionsOffer(flow_control=WINDOW),
    )


# ------------------------------------------------------------- local terminal


def window_size(fd: int) -> tuple[int, int, int, int]:
    """(rows, cols, pixel_width, pixel_height) of the local terminal, or 24x80."""
    import fcntl
    import struct
    import termios

    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return 24, 80, 0, 0
    rows, cols, pw, ph = struct.unpack("HHHH", packed)
    return rows or 24, cols or 80, pw, ph


class LocalTerminal:
    """Puts the local terminal in raw mode and restores it on every exit path
    (normal exit, exception, SIGTERM/SIGHUP via the caller, atexit)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> LocalTerminal:
        import atexit
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd, termios.TCSANOW)
        atexit.register(self.restore)
        return self

    def restore(self) -> None:
        import termios

        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            self.saved = None

    def __exit__(self, *exc_info: object) -> None:
        self.restore()


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Blocking write: a slow local terminal or pipe is our back-pressure
    (output is acknowledged only once written)."""
    try:
        n = os.write(fd, data)  # one call, nearly always (a keystroke's echo)
    except (BlockingIOError, InterruptedError):
        n = 0
    if n == len(data):
        return
    import select

    view = memoryview(data)[n:]
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[n:]


# ----------------------------------------------------------------- the client


def connect_failure(url: str, timeout: float, exc: BaseException) -> Failure:
    """The one line for a session that could not be opened, whichever driver
    tried (`openmux.aio.connect` or `openmux.polled`: the same errors)."""
    from openmux.connect_errors import HandshakeError, TransportError

    if isinstance(exc, HandshakeError):
        if exc.code == 4000:
            return Failure(f"{url}: authentication refused")
        return Failure(f"cannot connect to {url}: {exc}")
    if isinstance(exc, TimeoutError):
        return Failure(f"cannot connect to {url}: no answer within {timeout:g} s")
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(
            f"cannot connect to {url}: certificate not trusted "
            f"({exc.verify_message or exc.reason}); use --cacert"
        )
    if isinstance(exc, (OSError, TransportError)):
        errno_ = getattr(exc, "errno", None)
        reason = os.strerror(errno_) if errno_ else str(exc) or type(exc).__name__
        return Failure(f"cannot connect to {url}: {reason}")
    return Failure(f"cannot connect to {url}: {exc}")  # websockets/aioquic specific failures


class TermCore:
    """One `vroom term` run, all but the I/O loop: the terminal protocol's
    answers, the fast paths, local input and output, the exit status.

    A driver (`TermClient`: asyncio, any transport; `PolledTermClient`:
    poll(), tcp://, ws://, tls://, wss://) connects, calls `_begin(session)`, feeds it
    core events through `_handle_events`, runs until `_finish` and returns
    `_result()`. `session` is an `openmux.aio.Session` or an
    `openmux.polled.PolledClient`: both have `connection`, `flush()`,
    `set_fast_handler()`, `send_now()` and `writing_paused`. The driver
    provides `_start_stdin`/`_stop_stdin` and `_done_hook`.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        command: list[str],
        interactive: bool,
        env: dict[str, str],
        cacert: str | None = None,
        timeout: float = 10.0,
        stdin: int = 0,
        stdout: int = 1,
    ) -> None:
        self.url = url
        self.token = token
        self.command = command
        self.interactive = interactive
        self.env = env
        self.cacert = cacert
        self.timeout = timeout
        self.stdin = stdin
        self.stdout = stdout
        self.exit_code: int | None = None
        self.error: str | None = None
        self.done = False
        self.session: Any = None
        self.client: TerminalClient | None = None
        self._stdin_eof = False
        self._env_refused: tuple[str, ...] = ()
        self._processing = False
        self._output_type: type | None = None
        self._fast_input: Callable[[bytes], bool] | None = None

    def _cafile(self) -> str | None:
        """The certificate to trust for tls://, wss://, quic://: --cacert, else
        (for a vroomd on this machine) vroomd's own; None: the system's CAs."""
        if self.cacert is None and _host_of(self.url) in LOOPBACK:
            candidate = os.path.join(_vroomd_state_dir(), "cert.pem")
            if os.path.exists(candidate):
                return candidate
        return self.cacert

    # -- driver hooks

    def _start_stdin(self) -> None:
        raise NotImplementedError

    def _stop_stdin(self) -> None:
        raise NotImplementedError

    def _done_hook(self) -> None:
        """`_finish` was called (once)."""

    # -- shared

    def _flush(self) -> None:
        if not self._processing and self.session is not None:
            self.session.flush()

    def _begin(self, session: Any) -> None:
        """The session is open: start the terminal protocol on it."""
        from .client import TerminalClient
        from .events import PtyOutput

        self._output_type = PtyOutput
        self.session = session
        self.client = TerminalClient(
            session.connection,
            offer=build_offer(os.environ, self.interactive),
            ack_every=ACK_EVERY,
        )
        self.client.open_session("")

    def _handle_events(self, events: list[Any]) -> None:
        from openmux import ConnectionTerminated, LocalProtocolError

        client = self.client
        assert client is not None
        self._processing = True
        try:
            for event in events:
                try:
                    results = client.handle_event(event)
                except LocalProtocolError:
                    # A batch can hold a channel's opening and its closing: the
                    # core already forgot the channel we would answer on.
                    continue
                for result in results:
                    self._on_event(result)
                if isinstance(event, ConnectionTerminated):
                    self._fail_closed(event.code, event.reason)
        finally:
            self._processing = False

    def _finish(self, code: int | None = None, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        if error is not None:
            self.error = error
        else:
            self.exit_code = code
        self._done_hook()

    def _result(self) -> int:
        if self.error is not None:
            raise Failure(self.error)
        assert self.exit_code is not None
        return self.exit_code

    def _fail_closed(self, code: int, reason: str) -> None:
        text = f" ({reason})" if reason else ""
        self._finish(error=f"connection to {self.url} closed{text}")

    def _on_signal(self, signum: int) -> None:
        """SIGWINCH: the window changed; SIGTERM, SIGHUP: give up."""
        import signal

        if signum == signal.SIGWINCH:
            self._on_winch()
        else:
            self._finish(error=f"interrupted by {signal.Signals(signum).name}")

    def _signals(self) -> list[int]:
        """The signals a driver routes to `_on_signal`."""
        import signal

        chosen = [int(signal.SIGTERM), int(signal.SIGHUP)]
        return [int(signal.SIGWINCH), *chosen] if self.interactive else chosen

    # -- protocol events

    def _on_event(self, event: TerminalEvent) -> None:
        client = self.client
        assert client is not None and self.session is not None
        if type(event) is self._output_type:
            data = event.data  # type: ignore[attr-defined]
            write_all(self.stdout, data)
            client.ack(len(data))
            self._flush()
            return
        from . import events as ev

        if isinstance(event, ev.Negotiated):
            if event.select.auth.required:
                if "token" not in event.select.auth.methods:
                    self._finish(error=f"{self.url}: no authentication method we support")
                elif self.token is None:
                    self._finish(
                        error=f"{self.url} requires a token: set VROOM_TOKEN or use --token-file"
                    )
                else:
                    client.authenticate(token=self.token)
            else:
                self._request_pty()
        elif isinstance(event, ev.AuthResult):
            if event.ok:
                self._request_pty()
            else:
                self._finish(error=f"{self.url}: authentication refused")
        elif isinstance(event, ev.PtyGranted):
            if self.env:
                client.set_env(self.env)
            if self.command:
                client.exec(self.command[0] if len(self.command) == 1 else self.command)
            else:
                client.shell()
        elif isinstance(event, ev.PtyReady):
            self._install_fast_paths(event.session, event.channel_id)
            self._start_stdin()
            if self.interactive:
                self._on_winch()
        elif isinstance(event, ev.PtyRefused):
            self._finish(error=f"{self.url}: PTY refused: {event.reason}")
        elif isinstance(event, ev.ExitStatusReceived):
            if event.code is not None:
                self._finish(event.code)
            else:
                from .signals import signal_number

                number = signal_number(event.signal or "") or 0
                self._finish(128 + number)
        elif isinstance(event, ev.ErrorReceived):
            if event.code == 403 and event.names:
                self._env_refused = event.names
                print(
                    f"vroom: the server refused the variables {', '.join(event.names)}\r",
                    file=sys.stderr,
                )
            elif event.fatal:
                self._finish(error=self._describe_error(event.code, event.message))
            else:
                print(f"vroom: server: {event.message} ({event.code})\r", file=sys.stderr)
        elif isinstance(event, ev.SessionClosed):
            self._finish(error=f"{self.url}: session closed by the server ({event.reason})")
        self._flush()

    def _describe_error(self, code: int, message: str) -> str:
        if code == 401:
            return f"{self.url}: authentication refused"
        if code == 503:
            return f"{self.url}: {message or 'server limit reached'}"
        return f"{self.url}: {message} ({code})"

    def _request_pty(self) -> None:
        assert self.client is not None
        if self.interactive and os.isatty(self.stdout):
            rows, cols, pw, ph = window_size(self.stdout)
        elif self.interactive and os.isatty(self.stdin):
            rows, cols, pw, ph = window_size(self.stdin)
        else:
            rows, cols, pw, ph = 24, 80, 0, 0
        term = os.environ.get("TERM") or "xterm-256color" if self.interactive else "dumb"
        modes = None if self.interactive else {"raw": True}
        self.client.request_pty(term, rows, cols, pw, ph, modes)

    # -- local input

    def _on_winch(self) -> None:
        client, session = self.client, self.session
        if client is None or session is None:
            return
        fd = self.stdout if os.isatty(self.stdout) else self.stdin
        if not os.isatty(fd):
            return
        rows, cols, pw, ph = window_size(fd)
        try:
            client.resize(rows, cols, pw, ph)
        except Exception:
            return
        self._flush()

    def _install_fast_paths(self, key: str, channel: int) -> None:
        """Keystrokes and their echo skip the protocol layers when nothing
        special is going on (openmux.aio's "Fast paths"): a keystroke is
        written to the socket as one DATA frame, and DATA arriving is
        written to stdout and counted for the WINDOW_ACK here. Whatever
        else happens (another session state, a WINDOW_ACK due, an overrun
        to report, something queued ahead) goes the general way, which
        keeps every rule: these only do what the general path would do."""
        from .states import State

        session, client = self.session, self.client
        assert session is not None and client is not None
        sess = client.sessions.get(key)
        if sess is None or sess.pty_id != channel:
            return
        active = State.SESSION_ACTIVE
        window = sess.ack_window
        limit = window.window
        stdout = self.stdout
        send_now = session.send_now

        def fast_input(data: bytes) -> bool:
            return (
                sess.state is active
                and sess.pty_id == channel
                and not sess.eof
                and send_now(channel, 0, data)  # pty DATA
            )

        def fast_output(type_: int, data: bytes) -> bool:
            if type_ or sess.state is not active or sess.pty_id != channel:
                return False  # only DATA while the session runs
            size = len(data)
            if limit is not None and (
                window.received + size - window.acked > limit
                or window.consumed + size - window.acked >= window.ack_every
            ):
                return False  # an overrun to report, or a WINDOW_ACK due
            # `window.on_data(size)` and `window.consume(size)`, inline: both
            # are plain additions here (within the window, no ack due: above)
            window.received += size
            try:  # `write_all`'s first write, inline
                written = os.write(stdout, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            if written != size:
                write_all(stdout, memoryview(data)[written:])
            window.consumed += size
            return True

        try:
            session.set_fast_handler(channel, fast_output)
        except KeyError:  # closed in the batch being handled
            return
        self._fast_input = fast_input

    def _read_stdin(self) -> None:
        """stdin is readable: one read, sent the fast way if it can be."""
        try:
            data = os.read(self.stdin, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        fast = self._fast_input
        if data and fast is not None and fast(data):
            return  # (refused while writing is paused: the general path then)
        self._send_input(data)

    def _send_input(self, data: bytes) -> None:
        client, session = self.client, self.session
        if client is None or session is None or self._stdin_eof:
            return
        try:
            if data:
                client.send_input(data)
            else:
                self._stdin_eof = True
                self._stop_stdin()
                if not self.interactive:
                    client.send_eof()
        except Exception:  # the session is closing: input has nowhere to go
            self._stdin_eof = True
        self._flush()


class TermClient(TermCore):
    """The asyncio driver: any transport `openmux.aio` speaks (QUIC, TLS,
    WebRTC, proxies, redirects), uvloop when installed."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._done: asyncio.Future[None] | None = None
        self._reading = False
        self._stdin_task: asyncio.Task[None] | None = None

    # -- connect

    def _connect_options(self) -> dict[str, Any]:
        # ws_client: OpenMux's own WebSocket client; websockets' costs ~25 ms to import
        options: dict[str, Any] = {
            "timeout": self.timeout,
            "ping_interval": 30.0,
            "ws_client": "builtin",
        }
        scheme = self.url.split("://", 1)[0].lower()
        cafile = self._cafile()
        if scheme in ("tls", "wss") and cafile is not None:
            import ssl

            options["ssl"] = ssl.create_default_context(cafile=cafile)
        if scheme == "quic" and cafile is not None:
            options["cafile"] = cafile
        return options

    async def run(self) -> int:
        import asyncio

        import openmux.aio

        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        if self.done:  # finished before the loop ran (a signal)
            self._done.set_result(None)
        try:
            session = await openmux.aio.connect(self.url, **self._connect_options())
        except Exception as exc:
            raise connect_failure(self.url, self.timeout, exc) from None
        self._begin(session)
        self._install_tap(session)
        session.flush()
        try:
            await self._done
        finally:
            self._stop_stdin()
            if self._stdin_task is not None:
                self._stdin_task.cancel()
            if session.is_open:
                try:
                    await asyncio.wait_for(session.close(), 2)
                except (TimeoutError, Exception):
                    pass
        return self._result()

    def _install_tap(self, session: Session) -> None:
        from openmux import MessageReceived

        def tap(events: list[Any]) -> list[Any]:
            # Sends queued while we handle these events are flushed by the
            # asyncio layer's own pass after the tap, once it registered
            # channels with the transport (a QUIC stream must exist before
            # its frames). A batch of only messages leaves it nothing to do
            # but that flush.
            self._handle_events(events)
            # pongs and the end of the connection still go to the asyncio layer
            return [e for e in events if type(e) is not MessageReceived]

        session.add_event_tap(tap)

    def _done_hook(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- local input

    def _start_stdin(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self.stdin, self._on_stdin)
            self._reading = True
        except (PermissionError, OSError, ValueError):
            # A regular file or /dev/null: epoll refuses it, but reads never block.
            self._stdin_task = loop.create_task(self._pump_file())

    def _stop_stdin(self) -> None:
        if self._reading:
            import asyncio

            asyncio.get_running_loop().remove_reader(self.stdin)
            self._reading = False

    def _on_stdin(self) -> None:
        self._read_stdin()
        session = self.session
        if session is not None and session.writing_paused and self._reading:
            import asyncio

            asyncio.get_running_loop().remove_reader(self.stdin)
            self._reading = False
            self._stdin_task = asyncio.get_running_loop().create_task(self._resume_when_writable())

    async def _resume_when_writable(self) -> None:
        import asyncio

        session = self.session
        assert session is not None
        try:
            await session.wait_writable()
        except Exception:
            return
        if not self._stdin_eof:
            asyncio.get_running_loop().add_reader(self.stdin, self._on_stdin)
            self._reading = True

    async def _pump_file(self) -> None:
        session = self.session
        assert session is not None
        while not self._stdin_eof:
            if session.writing_paused:
                await session.wait_writable()
            try:
                data = os.read(self.stdin, 65536)
            except OSError:
                data = b""
            self._send_input(data)
            import asyncio

            await asyncio.sleep(0)


# ----------------------------------------------------------------------- main


def polled_transport(url: str) -> bool:
    """Whether `openmux.polled` (no asyncio) can carry this session: tcp://,
    tls://, ws:// and wss:// with no proxy in the environment, unless
    VROOM_ASYNCIO is set."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("tcp", "tls", "ws", "wss") or os.environ.get("VROOM_ASYNCIO"):
        return False
    if scheme in ("ws", "wss"):
        from openmux.websocket import proxy_configured

        return not proxy_configured()
    return True


def _term(args: argparse.Namespace) -> int:
    url, _user = parse_dest(args.dest)
    if not args.timeout > 0:
        raise Failure("--connect-timeout must be a number of seconds > 0")
    command = list(args.remote)
    if command and command[0] == "--":
        command = command[1:]
    env: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Failure(f"-e {item!r}: expected NAME=VALUE")
        env[name] = value
    token = find_token(url, args.token_file)
    stdin_tty = os.isatty(0)
    # A PTY like a terminal's when asked (-t) or when both ends are terminals;
    # otherwise a raw PTY, so that pipes and files stay byte-exact.
    interactive = bool(args.force_tty) or (stdin_tty and os.isatty(1))
    options: dict[str, Any] = dict(
        token=token,
        command=command,
        interactive=interactive,
        env=env,
        cacert=args.cacert,
        timeout=args.timeout,
    )

    def run() -> int:
        if polled_transport(url):
            from openmux.polled import HandOver

            from .termloop import PolledTermClient

            try:
                return PolledTermClient(url, **options).run()
            except HandOver:  # an HTTP redirect: openmux.aio follows it
                pass
        return _run_asyncio(TermClient(url, **options))

    if interactive and stdin_tty:
        with LocalTerminal(0):
            return run()
    return run()


def _run_asyncio(client: TermClient) -> int:
    import asyncio

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for signum in client._signals():
            loop.add_signal_handler(signum, client._on_signal, signum)
        return await client.run()

    return run_loop(main())


def run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """uvloop when it is installed (lower per-event overhead: keystroke
    latency), unless VROOM_NO_UVLOOP is set; the stdlib loop otherwise."""
    import asyncio

    if not os.environ.get("VROOM_NO_UVLOOP"):
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            pass
        else:
            result: int = uvloop.run(coro)
            return result
    return asyncio.run(coro)


def die(message: str) -> NoReturn:
    print(f"vroom: {message}", file=sys.stderr)
    sys.exit(FAILURE)


def main(argv: list[str] | None = None) -> int:
    args = parse_common(sys.argv[1:] if argv is None else argv) or build_parser().parse_args(argv)
    try:
        if args.command == "term":
            return _term(args)
    except Failure as exc:
        die(str(exc))
    except KeyboardInterrupt:
        die("interrupted")
    return FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
