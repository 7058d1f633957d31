"""The client side of VROOM-Terminal over one OpenMux connection.

`vroom term` and the browser page drive it: open a session, answer the
events (`HelloCompleted` → `offer()` unless an offer was preset,
`Negotiated` → `authenticate()` if SELECT requires it, then
`request_pty()`, `shell()`/`exec()`), then shuttle bytes with
`send_input()` and `PtyOutput`, acknowledging consumed output with `ack()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import openmux
from openmux import Channel

from .capabilities import PROTOCOL_VERSION, CapabilityOffer
from .channels import Role, control_spec, parse_name, pty_name, pty_spec
from .codec import Encoding, MessageType
from .endpoint import Endpoint, Out
from .errors import ErrorCode, HandshakeError, LocalProtocolError, ProtocolError
from .events import (
    AuthResult,
    ExitStatusReceived,
    HelloCompleted,
    Negotiated,
    PtyGranted,
    PtyOutput,
    PtyRefused,
    SessionClosed,
    SessionOpened,
    TerminalEvent,
)
from .flow import DEFAULT_ACK_EVERY, AckWindow
from .limits import DEFAULT_LIMITS, Limits
from .messages import (
    PROTOCOL_NAME,
    AuthRequest,
    AuthResponse,
    CapabilityOfferMessage,
    CapabilitySelectMessage,
    ClientHello,
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
from .ptywire import PtyType, encode_window_ack
from .session import Session
from .signals import signal_name, signal_number
from .states import CLIENT_PTY_TABLE, CLIENT_TABLE, State

_LIVE_PTY = (State.PTY_ALLOCATED, State.SESSION_ACTIVE)

DEFAULT_OFFER = CapabilityOffer()
"""What a client offers when told nothing: no terminal features, a 1 MiB window."""


_OUTPUT_STATES = tuple(
    state
    for (state, kind), name in CLIENT_PTY_TABLE.items()
    if kind is PtyType.DATA and name == "output"
)
"""States where DATA on the pty channel is output (`handle_event`'s shortcut);
a tuple, not a set: `in` compares by identity, where a set would call
Enum's Python-level `__hash__`."""
_DATA = int(PtyType.DATA)
_MessageReceived = openmux.MessageReceived
_PTY = Role.PTY


class TerminalClient(Endpoint):
    """VROOM-Terminal client state machine for every session on one mux.

    `offer` is used for sessions that do not bring their own (including a
    control channel the application listed in the mux HELLO). The default
    is conservative: nothing but flow control with a 1 MiB window. None
    means the application calls `offer()` after `HelloCompleted`.
    """

    _is_client = True
    _table = CLIENT_TABLE
    _pty_table = CLIENT_PTY_TABLE

    def __init__(
        self,
        mux: openmux.Connection,
        *,
        offer: CapabilityOffer | None = DEFAULT_OFFER,
        encodings: Sequence[Encoding] = (Encoding.CBOR, Encoding.JSON),
        ack_every: int = DEFAULT_ACK_EVERY,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(mux, limits)
        if not encodings:
            raise ValueError("at least one control encoding")
        self.default_offer = offer
        self.encodings = tuple(encodings)
        self.ack_every = ack_every
        self._opening: set[str] = set()
        self._dispatch: dict[str, Callable[[Session, Any, Out], None]] = {
            "hello": self._on_hello,
            "select": self._on_select,
            "auth_response": self._on_auth_response,
            "pty_response": self._on_pty_response,
            "exit_status": self._on_exit_status,
            "error": self._on_error_message,
            "output": self._on_output,
        }

    def handle_event(self, event: openmux.Event) -> list[TerminalEvent]:
        """Feed one OpenMux event; returns the terminal events it caused."""
        # Output on a pty channel, the bulk of what a client receives, goes
        # straight to where the general path ends (CLIENT_PTY_TABLE's
        # "output"): a few calls less per message of bulk output.
        if type(event) is _MessageReceived and event.type == _DATA:
            entry = self._by_channel.get(event.channel_id)
            if entry is not None and entry[1] is _PTY:
                sess = entry[0]
                if sess.state in _OUTPUT_STATES:
                    out: Out = []
                    try:
                        self._on_output(sess, (PtyType.DATA, bytes(event.data)), out)
                    except ProtocolError as exc:
                        self._answer(sess, exc, out)
                    return out
        return Endpoint.handle_event(self, event)

    # ------------------------------------------------------- application

    def open_session(self, session: str = "", *, offer: CapabilityOffer | None = None) -> str:
        """Ask for the session's control channel; HELLO follows when it opens."""
        existing = self.sessions.get(session)
        if session in self._opening or (existing is not None and existing.live):
            raise LocalProtocolError(f"session {session or '#1'!r} is already open")
        if self.mux.state is not openmux.State.OPEN:
            raise LocalProtocolError("the OpenMux connection is not open")
        try:
            self.mux.open_channel(control_spec(session))
        except openmux.LocalProtocolError as exc:  # the name is still in use
            raise LocalProtocolError(str(exc)) from None
        self.sessions[session] = Session(session, offer or self.default_offer)
        self._opening.add(session)
        return session

    def offer(self, offer: CapabilityOffer | None = None, *, session: str = "") -> None:
        """Send CAPABILITY_OFFER (mandatory before anything else)."""
        sess = self._require(session, State.HELLO_EXCHANGE)
        chosen = offer or sess.offer or CapabilityOffer()
        self._send_offer(sess, chosen)

    def authenticate(
        self,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        session: str = "",
    ) -> None:
        """AUTH_REQUEST with a token, or a username and password."""
        sess = self._require(session, State.AUTHENTICATING)
        if sess.auth_pending:
            raise LocalProtocolError("an AUTH_REQUEST is already out")
        if token is not None and username is None and password is None:
            request = AuthRequest("token", token=token)
        elif token is None and username is not None and password is not None:
            request = AuthRequest("password", username=username, password=password)
        else:
            raise LocalProtocolError("give a token, or a username and a password")
        self._send(sess, request)
        sess.auth_pending = True

    def request_pty(
        self,
        term: str = "xterm-256color",
        rows: int = 24,
        cols: int = 80,
        pixel_width: int = 0,
        pixel_height: int = 0,
        modes: Mapping[str, Any] | None = None,
        *,
        session: str = "",
    ) -> None:
        """PTY_REQUEST; `modes={"raw": True}` for byte-exact pipes (see docs)."""
        sess = self._require(session, State.PTY_REQUEST)
        if sess.pty_pending:
            raise LocalProtocolError("a PTY_REQUEST is already out")
        request = PtyRequest(term, rows, cols, pixel_width, pixel_height,
                             dict(modes) if modes is not None else None)  # fmt: skip
        self._send(sess, request)
        sess.pty_pending = True
        sess.pty_request = request

    def set_env(self, env: Mapping[str, str], *, session: str = "") -> None:
        """SET_ENV; names outside the server's allow-list come back in one ERROR 403."""
        sess = self._require(session, State.PTY_REQUEST, State.PTY_ALLOCATED)
        if sess.started:
            raise LocalProtocolError("the session has started")
        self._send(sess, SetEnv(dict(env)))

    def shell(self, *, session: str = "") -> None:
        self._start(session, ShellRequest())

    def exec(self, command: str | Sequence[str], *, session: str = "") -> None:
        """EXEC_REQUEST: a string for the user's shell (as ssh), a list as argv."""
        if isinstance(command, str):
            self._start(session, ExecRequest(command=command))
        else:
            self._start(session, ExecRequest(argv=tuple(command)))

    def resize(
        self, rows: int, cols: int, pixel_width: int = 0, pixel_height: int = 0,
        *, session: str = "",
    ) -> None:  # fmt: skip
        """WINDOW_RESIZE (any time after the PTY was granted; dropped while closing)."""
        sess = self._after_pty(session)
        if sess is not None:
            self._send(sess, WindowResize(rows, cols, pixel_width, pixel_height))

    def signal(self, sig: int | str, *, session: str = "") -> None:
        """SIGNAL by Linux number or by name (`"INT"`, `"SIGINT"`): names are
        portable, numbers are read with the Linux table whatever our OS."""
        number = sig if isinstance(sig, int) else signal_number(sig)
        if number is None or signal_name(number) is None:
            raise LocalProtocolError(f"unknown signal {sig!r}")
        sess = self._after_pty(session)
        if sess is not None:
            self._send(sess, Signal(number))

    def send_input(self, data: bytes, *, session: str = "") -> None:
        """Bytes for the remote PTY (Ctrl-C is the byte 0x03)."""
        sess = self._pty_session(session)
        if sess is not None and data:
            self._send_on(sess.pty_id, PtyType.DATA, data)

    def send_eof(self, *, session: str = "") -> None:
        """End of input (pty EOF 0x03): the remote command reads end of file."""
        sess = self._pty_session(session)
        if sess is not None:
            sess.eof = True
            self._send_on(sess.pty_id, PtyType.EOF, b"")

    def ack(self, consumed: int, *, session: str = "") -> None:
        """`consumed` more output bytes were used up (drawn, written out);
        sends WINDOW_ACK when enough accumulated (`ack_every`)."""
        sess = self.sessions.get(session)
        if sess is None:
            raise LocalProtocolError(f"no session {session or '#1'!r}")
        count = sess.ack_window.consume(consumed)
        if count is not None and sess.state in _LIVE_PTY:
            self._send_on(sess.pty_id, PtyType.WINDOW_ACK, encode_window_ack(count))

    # ---------------------------------------------------------- helpers

    def _start(self, session: str, message: ShellRequest | ExecRequest) -> None:
        sess = self._require(session, State.PTY_ALLOCATED)
        if sess.started:
            raise LocalProtocolError("the session has already started")
        self._send(sess, message)
        sess.started = True
        self._maybe_active(sess, [])

    def _after_pty(self, session: str) -> Session | None:
        sess = self._live(session)
        if sess.state is State.CLOSING:
            return None  # may race with EXIT_STATUS: not a misuse
        if sess.state not in _LIVE_PTY:
            raise LocalProtocolError(f"no PTY yet (state {sess.state.value})")
        return sess

    def _pty_session(self, session: str) -> Session | None:
        sess = self._after_pty(session)
        if sess is None:
            return None
        if sess.pty_id is None:
            raise LocalProtocolError("the pty channel is not open yet (wait for PtyReady)")
        if sess.eof:
            raise LocalProtocolError("input was ended with send_eof()")
        return sess

    def _send_offer(self, sess: Session, offer: CapabilityOffer) -> None:
        self._send(sess, CapabilityOfferMessage(offer))
        sess.offer = offer
        sess.state = State.CAPABILITY_NEGOTIATION

    # ---------------------------------------------------------- channels

    def _on_channel_opened(self, channel: Channel, local: bool, out: Out) -> None:
        parsed = parse_name(channel.name)
        if parsed is None:
            return
        role, key = parsed
        sess = self.sessions.get(key)
        if not local:
            self._close_channel(channel.id, "the client opens terminal channels")
            return
        if role is Role.CONTROL:
            if key not in self._opening or sess is None:  # listed in the mux HELLO: adopt it
                sess = Session(key, self.default_offer)
                self.sessions[key] = sess
            self._opening.discard(key)
            self._register(sess, channel, Role.CONTROL)
            sess.state = State.CONTROL_OPEN
            out.append(SessionOpened(key))
            self._send(sess, ClientHello(tuple(e.value for e in self.encodings)))
            return
        if sess is not None and sess.pty_granted and sess.pty_id is None and sess.live:
            self._pty_opened(sess, channel, out)
            return
        self._close_channel(channel.id, "no PTY was granted")

    def _on_channel_rejected(self, name: str, code: int, reason: str, out: Out) -> None:
        parsed = parse_name(name)
        if parsed is None:
            return
        role, key = parsed
        sess = self.sessions.get(key)
        if sess is None:
            return
        text = f"{name} refused ({code}{': ' + reason if reason else ''})"
        if role is Role.CONTROL and key in self._opening:
            self._opening.discard(key)
            out.append(SessionClosed(key, text, True))
        elif sess.live:
            self._close(sess, text, out, by_peer=True)

    # ----------------------------------------------------------- control

    def _handlers(self) -> Mapping[str, Callable[[Session, Any, Out], None]]:
        return self._dispatch

    def _guard(self, sess: Session, message_type: MessageType) -> bool:
        if message_type is MessageType.AUTH_RESPONSE:
            return sess.auth_pending
        if message_type is MessageType.PTY_RESPONSE:
            return sess.pty_pending
        if message_type is MessageType.EXIT_STATUS:
            return sess.started
        return True

    def _on_hello(self, sess: Session, hello: ServerHello, out: Out) -> None:
        if hello.protocol != PROTOCOL_NAME or hello.version != 1:
            raise HandshakeError(
                f"server speaks {hello.protocol!r} version {hello.version}", ErrorCode.BAD_MESSAGE
            )
        chosen = next((e for e in self.encodings if e.value == hello.control_encoding), None)
        if chosen is None:
            raise HandshakeError(
                f"server chose {hello.control_encoding!r}, which we did not offer",
                ErrorCode.UNSUPPORTED_ENCODING,
            )
        sess.encoding = chosen
        sess.state = State.HELLO_EXCHANGE
        out.append(HelloCompleted(sess.key, chosen))
        if sess.offer is not None:
            self._send_offer(sess, sess.offer)

    def _on_select(self, sess: Session, message: CapabilitySelectMessage, out: Out) -> None:
        select = message.select
        offer = sess.offer or CapabilityOffer()
        if select.protocol_version != PROTOCOL_VERSION:
            raise ProtocolError(f"SELECT protocol_version {select.protocol_version}", fatal=True)
        offered, granted = offer.extensions.flow_control, select.extensions.flow_control
        if granted is not None and (offered is None or not 0 < granted <= offered):
            raise ProtocolError(f"SELECT grants window {granted}, offered {offered}", fatal=True)
        sess.select = select
        sess.ack_window = AckWindow(granted, self.ack_every)
        sess.state = State.AUTHENTICATING if select.auth.required else State.PTY_REQUEST
        out.append(Negotiated(sess.key, offer, select))

    def _on_auth_response(self, sess: Session, message: AuthResponse, out: Out) -> None:
        sess.auth_pending = False
        if message.ok:
            sess.state = State.PTY_REQUEST
        else:
            sess.state = State.CLOSING  # ERROR 401 and CLOSE_CHANNEL follow
        out.append(AuthResult(sess.key, message.ok, reason=message.reason))

    def _on_pty_response(self, sess: Session, message: PtyResponse, out: Out) -> None:
        expected = pty_name(sess.key)
        if message.ok and message.channel != expected:
            raise ProtocolError(
                f"PTY_RESPONSE names channel {message.channel!r}, expected {expected!r}",
                fatal=True,
            )
        sess.pty_pending = False
        if not message.ok:
            sess.state = State.CLOSING  # the server closes the control channel
            out.append(PtyRefused(sess.key, message.reason or "PTY refused"))
            return
        sess.pty_granted = True
        sess.state = State.PTY_ALLOCATED
        out.append(PtyGranted(sess.key, message))
        try:
            self.mux.open_channel(pty_spec(sess.key))
        except openmux.LocalProtocolError as exc:  # the name is still in use
            self._close(sess, f"cannot open the pty channel: {exc}", out, by_peer=False)

    def _on_exit_status(self, sess: Session, message: ExitStatus, out: Out) -> None:
        sess.state = State.CLOSING
        sess.pending_exit = message
        self._maybe_exit(sess, out)

    def _maybe_exit(self, sess: Session, out: Out) -> None:
        """Report EXIT_STATUS only once every output byte it announces arrived
        (it can overtake them on transports without cross-channel order)."""
        status = sess.pending_exit
        if status is None:
            return
        if status.output_bytes is not None and sess.ack_window.received < status.output_bytes:
            return
        sess.pending_exit = None
        out.append(ExitStatusReceived(sess.key, status.code, status.signal, status.core_dumped))
        self._close(sess, "exited", out, by_peer=True)

    # ---------------------------------------------------------------- pty

    def _on_output(self, sess: Session, item: tuple[PtyType, bytes], out: Out) -> None:
        pty_type, data = item
        within = sess.ack_window.on_data(len(data))
        out.append(PtyOutput(sess.key, data, pty_type is PtyType.ZSTD_DATA))
        if not within and not sess.overrun_reported:
            sess.overrun_reported = True
            self._answer(sess, ProtocolError("output beyond the granted window"), out)
        self._maybe_exit(sess, out)


__all__ = ["TerminalClient"]
