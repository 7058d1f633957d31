"""The server side of VROOM-Terminal over one OpenMux connection.

vroomd drives it: `handle_event()` turns OpenMux events into requests
(`PtyRequested`, `ShellRequested`, `PtyInput` ...) and vroomd answers with
`grant_pty()`, `send_output()`, `send_exit_status()` ... Everything the
protocol decides by itself (HELLO, capability resolution, auth bookkeeping,
the env allow-list, state checks, flow-control accounting) happens here, so
vroomd only deals with PTYs and processes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import openmux
from openmux import Channel, ChannelSpec

from .capabilities import AuthInfo, ServerCapabilities, resolve
from .channels import Role, channel_policy, parse_name, pty_name
from .codec import Encoding, MessageType
from .endpoint import Endpoint, Out
from .errors import (
    AuthenticationFailed,
    ErrorCode,
    HandshakeError,
    LocalProtocolError,
    WrongState,
)
from .events import (
    AuthResult,
    EnvSet,
    ErrorSent,
    ExecRequested,
    HelloCompleted,
    InputClosed,
    Negotiated,
    PtyInput,
    PtyRequested,
    SessionOpened,
    ShellRequested,
    SignalRequested,
    WindowAcked,
    WindowResized,
)
from .flow import SendWindow
from .limits import DEFAULT_LIMITS, Limits
from .messages import (
    PROTOCOL_NAME,
    AuthRequest,
    AuthResponse,
    CapabilityOfferMessage,
    CapabilitySelectMessage,
    ClientHello,
    Error,
    ExecRequest,
    ExitStatus,
    PtyRequest,
    PtyResponse,
    ServerHello,
    SetEnv,
    ShellRequest,
    Signal,
    WindowResize,
)
from .ptywire import PtyType, check_eof, decode_window_ack
from .session import Session
from .signals import signal_name, signal_number
from .states import SERVER_PTY_TABLE, SERVER_TABLE, State

DEFAULT_ENV_ALLOW = ("TERM", "LANG", "LC_*", "COLORTERM", "TZ")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Authenticator = Callable[[AuthRequest], bool]
"""Decides an AUTH_REQUEST; compare secrets in constant time (hmac.compare_digest)."""


def env_allowed(name: str, allow: Iterable[str]) -> bool:
    """`LC_*` style prefix patterns or exact names; never a malformed name."""
    if not _ENV_NAME.fullmatch(name):
        return False
    for pattern in allow:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


class TerminalServer(Endpoint):
    """VROOM-Terminal server state machine for every session on one mux.

    `authenticate=None` means no terminal-level auth (vroomd `--no-auth`);
    with a callback, SELECT still says `required: false` when the OpenMux
    connection was authenticated already (a token in its HELLO or the
    transport's upgrade), unless `mux_authenticated` says otherwise.
    """

    _is_client = False
    _table = SERVER_TABLE
    _pty_table = SERVER_PTY_TABLE

    def __init__(
        self,
        mux: openmux.Connection,
        *,
        capabilities: ServerCapabilities | None = None,
        authenticate: Authenticator | None = None,
        auth_methods: Sequence[str] = ("token",),
        mux_authenticated: bool | None = None,
        env_allow: Sequence[str] = DEFAULT_ENV_ALLOW,
        encodings: Sequence[Encoding] = (Encoding.CBOR, Encoding.JSON),
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(mux, limits)
        self.capabilities = capabilities or ServerCapabilities()
        self.authenticate = authenticate
        self.auth_methods = tuple(auth_methods)
        self.mux_authenticated = mux_authenticated
        self.env_allow = tuple(env_allow)
        self.encodings = tuple(encodings)
        self._dispatch: dict[str, Callable[[Session, Any, Out], None]] = {
            "hello": self._on_hello,
            "offer": self._on_offer,
            "auth_request": self._on_auth_request,
            "set_env": self._on_set_env,
            "pty_request": self._on_pty_request,
            "shell": self._on_shell,
            "exec": self._on_exec,
            "resize": self._on_resize,
            "signal": self._on_signal,
            "error": self._on_error_message,
            "input": self._on_input,
            "ack": self._on_ack,
            "eof": self._on_eof,
        }

    channel_policy = staticmethod(channel_policy)
    """Use as (or inside) `openmux.Config.channel_policy`: pty channels are deferred to us."""

    # ------------------------------------------------------- application

    def grant_pty(
        self, session: str, *, session_id: str | None = None, resume_token: str | None = None
    ) -> None:
        """Answer a pending PTY_REQUEST with success; the client then opens the pty channel."""
        sess = self._require(session, State.PTY_REQUEST)
        if not sess.pty_pending:
            raise LocalProtocolError("no PTY_REQUEST is pending")
        self._send(sess, PtyResponse(True, pty_name(sess.key), None, session_id, resume_token))
        sess.pty_pending = False
        sess.pty_granted = True
        sess.state = State.PTY_ALLOCATED

    def refuse_pty(self, session: str, reason: str, code: int = ErrorCode.UNAVAILABLE) -> None:
        """PTY_RESPONSE ok:false, ERROR `code` (fatal), then close: PTY denied → Disconnected."""
        sess = self._require(session, State.PTY_REQUEST)
        if not sess.pty_pending:
            raise LocalProtocolError("no PTY_REQUEST is pending")
        sess.pty_pending = False
        self._send(sess, PtyResponse(False, None, reason))
        self._send(sess, Error(int(code), reason, True))
        self._close(sess, reason, [], by_peer=False)

    def send_credit(self, session: str) -> int | None:
        """Bytes `send_output()` accepts now: 0 means stop reading the PTY,
        None means no credit limit (the client did not offer flow control)."""
        sess = self.sessions.get(session)
        if sess is None or not self._mux_has(sess.pty_id) or sess.state not in (
            State.PTY_ALLOCATED, State.SESSION_ACTIVE
        ):  # fmt: skip
            return 0
        return sess.send_window.available

    def send_output(self, session: str, data: bytes) -> int:
        """Send PTY output as DATA within the credit; returns the bytes taken
        (the caller keeps the rest and waits for `WindowAcked`)."""
        sess = self._output_session(session)
        if not self._mux_has(sess.pty_id):
            return 0  # closed in the batch being handled: SessionClosed follows
        size = sess.send_window.take(len(data))
        if size:
            self._send_on(sess.pty_id, PtyType.DATA, data if size == len(data) else data[:size])
        return size

    def send_compressed(self, session: str, frame: bytes) -> bool:
        """Send one zstd frame as ZSTD_DATA if the whole frame fits the credit
        (a frame cannot be split); False means wait for `WindowAcked`."""
        sess = self._output_session(session)
        if not sess.zstd:
            raise LocalProtocolError("zstd_compression was not negotiated")
        available = sess.send_window.available
        if not self._mux_has(sess.pty_id):
            return False
        if available is not None and len(frame) > available:
            if len(frame) > (sess.send_window.window or 0):
                raise LocalProtocolError("the frame is larger than the whole window")
            return False
        sess.send_window.take(len(frame))
        self._send_on(sess.pty_id, PtyType.ZSTD_DATA, frame)
        return True

    def send_exit_status(
        self,
        session: str,
        code: int | None = None,
        signal: int | str | None = None,
        core_dumped: bool = False,
    ) -> None:
        """EXIT_STATUS, after every output byte was given to `send_output()`.

        `signal` may be a Linux number or a name (`"TERM"`, `"SIGTERM"`); it
        goes on the wire as the name without SIG (House §6.3).
        """
        sess = self._require(session, State.PTY_ALLOCATED, State.SESSION_ACTIVE)
        if not sess.started:
            raise LocalProtocolError("no program was started")
        name: str | None = None
        if signal is not None:
            number = signal if isinstance(signal, int) else signal_number(signal)
            name = signal_name(number) if number is not None else None
            if name is None:
                raise LocalProtocolError(f"unknown signal {signal!r}")
        if code is None and name is None:
            raise LocalProtocolError("EXIT_STATUS needs a code or a signal")
        self._send(sess, ExitStatus(code, name, core_dumped, sess.send_window.sent))
        sess.state = State.CLOSING

    def _output_session(self, session: str) -> Session:
        sess = self._require(session, State.PTY_ALLOCATED, State.SESSION_ACTIVE)
        if sess.pty_id is None:
            raise LocalProtocolError("the pty channel is not open yet")
        return sess

    # ---------------------------------------------------------- channels

    def _on_channel_opened(self, channel: Channel, local: bool, out: Out) -> None:
        parsed = parse_name(channel.name)
        if parsed is None:
            return
        role, key = parsed
        if role is Role.CONTROL:
            if local:  # the client opens terminal channels, never us
                self._close_channel(channel.id, "the client opens terminal channels")
                return
            sess = Session(key)
            self.sessions[key] = sess
            self._register(sess, channel, Role.CONTROL)
            sess.state = State.CONTROL_OPEN
            out.append(SessionOpened(key))
            return
        sess_or_none = self.sessions.get(key)
        if sess_or_none is not None and self._pty_acceptable(sess_or_none):
            self._pty_opened(sess_or_none, channel, out)
            return
        self._close_channel(channel.id, "no PTY was granted on this session")
        if sess_or_none is not None and sess_or_none.live:
            self._answer(sess_or_none, WrongState("pty channel opened before a PTY_RESPONSE"), out)

    def _on_channel_requested(self, request_id: int, spec: ChannelSpec, out: Out) -> None:
        parsed = parse_name(spec.name)
        if parsed is None:
            return
        role, key = parsed
        if self.mux.state is not openmux.State.OPEN:
            return
        sess = self.sessions.get(key)
        if role is Role.CONTROL or (sess is not None and self._pty_acceptable(sess)):
            channel = self.mux.accept_channel(request_id)
            self._on_channel_opened(channel, False, out)
        else:
            self.mux.reject_channel(request_id, 4000, "no PTY was granted on this session")

    @staticmethod
    def _pty_acceptable(sess: Session) -> bool:
        return sess.pty_granted and sess.pty_id is None and sess.state in (
            State.PTY_ALLOCATED, State.SESSION_ACTIVE
        )  # fmt: skip

    # ------------------------------------------------------------ control

    def _handlers(self) -> Mapping[str, Callable[[Session, Any, Out], None]]:
        return self._dispatch

    def _guard(self, sess: Session, message_type: MessageType) -> bool:
        if message_type is MessageType.PTY_REQUEST:
            return not sess.pty_pending
        if message_type in (MessageType.SET_ENV, MessageType.SHELL_REQUEST,
                            MessageType.EXEC_REQUEST):  # fmt: skip
            return not sess.started
        return True

    def _on_hello(self, sess: Session, hello: ClientHello, out: Out) -> None:
        if hello.protocol != PROTOCOL_NAME:
            raise HandshakeError(f"protocol {hello.protocol!r} is not {PROTOCOL_NAME!r}", 400)
        if hello.version != 1:
            raise HandshakeError(f"version {hello.version} is not supported (server speaks 1)",
                                 ErrorCode.BAD_MESSAGE)  # fmt: skip
        ours = {e.value: e for e in self.encodings}
        chosen = next((ours[name] for name in hello.control_encoding if name in ours), None)
        if chosen is None:
            raise HandshakeError(
                f"no common control encoding (server supports {', '.join(ours)})",
                ErrorCode.UNSUPPORTED_ENCODING,
            )
        self._send(sess, ServerHello(chosen.value))
        sess.encoding = chosen
        sess.state = State.HELLO_EXCHANGE
        out.append(HelloCompleted(sess.key, chosen))

    def _auth_required(self) -> bool:
        if self.authenticate is None:
            return False
        if self.mux_authenticated is not None:
            return not self.mux_authenticated
        config = self.mux.config
        mux_auth = self.mux.transport_authenticated or (
            config.token is not None or config.authenticate is not None
        )
        return not mux_auth

    def _on_offer(self, sess: Session, message: CapabilityOfferMessage, out: Out) -> None:
        required = self._auth_required()
        auth = AuthInfo(required, self.auth_methods if required else ())
        select = resolve(message.offer, self.capabilities, auth)
        sess.state = State.CAPABILITY_NEGOTIATION
        self._send(sess, CapabilitySelectMessage(select))
        sess.offer, sess.select = message.offer, select
        sess.send_window = SendWindow(select.extensions.flow_control)
        sess.state = State.AUTHENTICATING if required else State.PTY_REQUEST
        out.append(Negotiated(sess.key, message.offer, select))

    def _on_auth_request(self, sess: Session, request: AuthRequest, out: Out) -> None:
        assert self.authenticate is not None  # AUTHENTICATING is only entered with one
        ok = request.method in self.auth_methods and bool(self.authenticate(request))
        if ok:
            self._send(sess, AuthResponse(True))
            sess.state = State.PTY_REQUEST
            out.append(AuthResult(sess.key, True, request.method, request.username))
            return
        reason = (
            "authentication failed" if request.method in self.auth_methods
            else f"auth method {request.method!r} is not offered"
        )  # fmt: skip
        self._send(sess, AuthResponse(False, reason))
        out.append(AuthResult(sess.key, False, request.method, request.username, reason))
        raise AuthenticationFailed(reason)

    def _on_set_env(self, sess: Session, message: SetEnv, out: Out) -> None:
        accepted: dict[str, str] = {}
        refused: list[str] = []
        for name, value in message.env.items():
            if env_allowed(name, self.env_allow) and "\x00" not in value:
                accepted[name] = value
            else:
                refused.append(name)
        if accepted or not refused:
            out.append(EnvSet(sess.key, accepted, tuple(refused)))
        if refused:
            text = "SET_ENV refused: " + ", ".join(refused)
            self._send(sess, Error(ErrorCode.FORBIDDEN, text, False, tuple(refused)))
            out.append(ErrorSent(sess.key, ErrorCode.FORBIDDEN, text, False))

    def _on_pty_request(self, sess: Session, request: PtyRequest, out: Out) -> None:
        sess.pty_pending = True
        sess.pty_request = request
        out.append(PtyRequested(sess.key, request))

    def _on_shell(self, sess: Session, message: ShellRequest, out: Out) -> None:
        sess.started = True
        out.append(ShellRequested(sess.key))
        self._maybe_active(sess, out)

    def _on_exec(self, sess: Session, message: ExecRequest, out: Out) -> None:
        sess.started = True
        out.append(ExecRequested(sess.key, message.command, message.argv))
        self._maybe_active(sess, out)

    def _on_resize(self, sess: Session, message: WindowResize, out: Out) -> None:
        out.append(WindowResized(sess.key, message.rows, message.cols, message.pixel_width,
                                 message.pixel_height))  # fmt: skip

    def _on_signal(self, sess: Session, message: Signal, out: Out) -> None:
        out.append(SignalRequested(sess.key, message.number, message.name))

    # ---------------------------------------------------------------- pty

    def _on_input(self, sess: Session, item: tuple[PtyType, bytes], out: Out) -> None:
        pty_type, data = item
        if sess.eof:
            raise WrongState("pty input after EOF")
        out.append(PtyInput(sess.key, data, pty_type is PtyType.ZSTD_DATA))

    def _on_ack(self, sess: Session, item: tuple[PtyType, bytes], out: Out) -> None:
        window = sess.send_window
        if window.window is None:
            raise WrongState("WINDOW_ACK but flow control was not negotiated")
        newly = window.on_ack(decode_window_ack(item[1]))
        if newly:
            out.append(WindowAcked(sess.key, window.acked, window.available or 0))

    def _on_eof(self, sess: Session, item: tuple[PtyType, bytes], out: Out) -> None:
        check_eof(item[1])
        if sess.eof:
            raise WrongState("a second EOF")
        sess.eof = True
        out.append(InputClosed(sess.key))


__all__ = ["DEFAULT_ENV_ALLOW", "Authenticator", "TerminalServer", "env_allowed"]
