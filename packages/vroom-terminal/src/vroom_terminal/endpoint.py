"""What the client and the server state machines share: the glue to OpenMux.

In the style of HTTP/3 over QUIC (aioquic's `H3Connection`): the endpoint
holds an `openmux.Connection`, consumes its events in `handle_event()`, and
calls its `send_message`/`open_channel`/`close_channel`; the caller still
owns the transport and sends whatever the mux queued. Events for channels
that are not ours are ignored, so one mux can carry Terminal and Graphical.

A misbehaving peer never makes `handle_event()` raise: the endpoint answers
with ERROR (closing the control channel when the error is fatal) and reports
`ErrorSent`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import openmux
from openmux import Channel, ChannelSpec

from .channels import Role
from .codec import MessageType, decode_tlv
from .errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    UnknownMessage,
    WrongState,
)
from .events import (
    ErrorReceived,
    ErrorSent,
    PtyReady,
    SessionActive,
    SessionClosed,
    TerminalEvent,
)
from .limits import DEFAULT_LIMITS, Limits
from .messages import Error, Message, decode_body, encode_message
from .ptywire import PtyType
from .session import Session
from .states import State

Out = list[TerminalEvent]
_PTY_TYPES = {int(t): t for t in PtyType}
"""Frame type -> PtyType without an enum call (one per keystroke)."""


class Endpoint:
    """Base of `TerminalServer` and `TerminalClient`; not used directly."""

    _is_client: ClassVar[bool]
    _table: ClassVar[Mapping[tuple[State, MessageType], str]]
    _pty_table: ClassVar[Mapping[tuple[State, PtyType], str]]

    def __init__(self, mux: openmux.Connection, limits: Limits = DEFAULT_LIMITS) -> None:
        self.mux = mux
        self.limits = limits
        self.sessions: dict[str, Session] = {}
        """Every session by key, the closed ones too until their key is reused."""
        self._by_channel: dict[int, tuple[Session, Role]] = {}

    # ------------------------------------------------------------ public

    def state(self, session: str = "") -> State:
        sess = self.sessions.get(session)
        return sess.state if sess is not None else State.DISCONNECTED

    def handle_event(self, event: openmux.Event) -> list[TerminalEvent]:
        """Feed one OpenMux event; returns the terminal events it caused."""
        out: Out = []
        if isinstance(event, openmux.MessageReceived):
            entry = self._by_channel.get(event.channel_id)
            if entry is not None:
                sess, role = entry
                if role is Role.CONTROL:
                    self._on_control(sess, event.type, bytes(event.data), out)
                else:
                    self._on_pty_message(sess, event.type, bytes(event.data), out)
        elif isinstance(event, openmux.ChannelOpened):
            self._on_channel_opened(event.channel, event.locally_initiated, out)
        elif isinstance(event, openmux.ChannelClosed):
            self._on_channel_closed(event.channel, event.reason, out)
        elif isinstance(event, openmux.ChannelRequested):
            self._on_channel_requested(event.request_id, event.spec, out)
        elif isinstance(event, openmux.ChannelRejected):
            self._on_channel_rejected(event.name, event.code, event.reason, out)
        elif isinstance(event, openmux.ConnectionTerminated):
            for sess in self.sessions.values():
                if sess.live:
                    self._forget(sess)
                    out.append(SessionClosed(sess.key, event.reason or "connection closed", True))
        return out

    def send_error(self, session: str, code: int, message: str, *, fatal: bool = False) -> None:
        """Send ERROR on a session's control channel; a fatal one closes the session."""
        sess = self._live(session)
        self._send(sess, Error(int(code), message, fatal))
        if fatal:
            self._close(sess, message, [], by_peer=False)

    def close_session(self, session: str = "", reason: str = "") -> None:
        """Close a session's channels now (pty first, then control)."""
        sess = self._live(session)
        self._close(sess, reason, [], by_peer=False)

    # ----------------------------------------------------- to subclasses

    def _on_channel_opened(self, channel: Channel, local: bool, out: Out) -> None:
        raise NotImplementedError

    def _on_channel_requested(self, request_id: int, spec: ChannelSpec, out: Out) -> None:
        return None

    def _on_channel_rejected(self, name: str, code: int, reason: str, out: Out) -> None:
        return None

    def _guard(self, sess: Session, message_type: MessageType) -> bool:
        return True

    def _handlers(self) -> Mapping[str, Callable[[Session, Any, Out], None]]:
        raise NotImplementedError

    # --------------------------------------------------------- internals

    def _live(self, session: str) -> Session:
        sess = self.sessions.get(session)
        if sess is None or not sess.live:
            raise LocalProtocolError(f"session {session or '#1'!r} is not open")
        return sess

    def _require(self, session: str, *states: State) -> Session:
        sess = self._live(session)
        if sess.state not in states:
            raise LocalProtocolError(
                f"not allowed in state {sess.state.value} (session {session or '#1'})"
            )
        return sess

    def _send(self, sess: Session, message: Message) -> None:
        type_, data = encode_message(message, sess.encoding)
        self._send_on(sess.control_id, type_, data)

    def _send_on(self, channel_id: int | None, type_: int, data: bytes) -> bool:
        """Send unless the channel is gone. The mux hands us events after it
        processed a whole batch, so a channel an event names may already be
        closed (the peer sent CLOSE_CHANNEL right behind): the session's own
        ChannelClosed follows, and the message has nobody to go to."""
        if not self._mux_has(channel_id):
            return False
        assert channel_id is not None
        self.mux.send_message(channel_id, type_, data)
        return True

    def _mux_has(self, channel_id: int | None) -> bool:
        return (
            channel_id is not None
            and self.mux.state is openmux.State.OPEN
            and channel_id in self.mux.channels
        )

    def _close_channel(self, channel_id: int | None, reason: str) -> None:
        if self._mux_has(channel_id):
            assert channel_id is not None
            self.mux.close_channel(channel_id, reason)

    def _register(self, sess: Session, channel: Channel, role: Role) -> None:
        self._by_channel[channel.id] = (sess, role)
        if role is Role.CONTROL:
            sess.control_id = channel.id
        else:
            sess.pty_id = channel.id

    def _forget(self, sess: Session) -> None:
        for channel_id in (sess.pty_id, sess.control_id):
            if channel_id is not None:
                self._by_channel.pop(channel_id, None)
        sess.pty_id = sess.control_id = None
        sess.state = State.DISCONNECTED

    def _close(self, sess: Session, reason: str, out: Out, *, by_peer: bool) -> None:
        """Close the session's channels, control first: the peer ends the session
        on the control channel's CLOSE_CHANNEL and closes nothing itself, so the
        two CLOSE_CHANNELs never cross."""
        for channel_id in (sess.control_id, sess.pty_id):
            self._close_channel(channel_id, reason)
        self._forget(sess)
        out.append(SessionClosed(sess.key, reason, by_peer))

    def _answer(self, sess: Session, exc: ProtocolError, out: Out) -> None:
        """Answer a peer's mistake with ERROR (House codes); fatal closes."""
        if sess.control_id is None:
            return
        self._send(sess, Error(exc.code, exc.reason, exc.fatal))
        out.append(ErrorSent(sess.key, exc.code, exc.reason, exc.fatal))
        if exc.fatal:
            self._close(sess, exc.reason, out, by_peer=False)

    def _maybe_active(self, sess: Session, out: Out) -> None:
        if sess.state is State.PTY_ALLOCATED and sess.started and sess.pty_id is not None:
            sess.state = State.SESSION_ACTIVE
            out.append(SessionActive(sess.key))

    def _pty_opened(self, sess: Session, channel: Channel, out: Out) -> None:
        self._register(sess, channel, Role.PTY)
        out.append(PtyReady(sess.key, channel.id))
        self._maybe_active(sess, out)

    def _on_channel_closed(self, channel: Channel, reason: str, out: Out) -> None:
        entry = self._by_channel.pop(channel.id, None)
        if entry is None:
            return
        sess, role = entry
        if role is Role.CONTROL:
            # The session is over; the peer closes its pty channel itself.
            sess.control_id = None
            self._forget(sess)
            out.append(SessionClosed(sess.key, reason or "control channel closed", True))
            return
        sess.pty_id = None
        if sess.state is not State.CLOSING:  # the data plane is gone: end the session
            self._close(sess, reason or "pty channel closed by the peer", out, by_peer=True)

    # ------------------------------------------------- control messages

    def _on_control(self, sess: Session, frame_type: int, data: bytes, out: Out) -> None:
        try:
            tlv = decode_tlv(frame_type, data)
        except ProtocolError as exc:
            self._answer(sess, exc, out)
            return
        is_error = tlv.type is MessageType.ERROR
        handler = self._table.get((sess.state, tlv.type))
        if handler is None or not self._guard(sess, tlv.type):
            if not is_error:
                self._answer(
                    sess,
                    WrongState(f"{tlv.type.name} is not allowed in state {sess.state.value}"),
                    out,
                )
            return
        if handler == "drop":
            return
        try:
            message = decode_body(
                tlv.type, tlv.payload, sess.encoding, from_server=self._is_client,
                limits=self.limits,
            )  # fmt: skip
            self._handlers()[handler](sess, message, out)
        except ProtocolError as exc:
            if not is_error:  # never answer a broken ERROR with an ERROR
                self._answer(sess, exc, out)

    def _on_error_message(self, sess: Session, message: Error, out: Out) -> None:
        out.append(ErrorReceived(sess.key, message.code, message.message, message.fatal,
                                 message.names))  # fmt: skip
        if message.fatal:
            # The sender closes the control channel after a fatal ERROR.
            sess.state = State.CLOSING

    # ----------------------------------------------------- pty messages

    def _on_pty_message(self, sess: Session, frame_type: int, data: bytes, out: Out) -> None:
        try:
            pty_type = _PTY_TYPES.get(frame_type)
            if pty_type is None:
                raise UnknownMessage(f"unknown pty-channel type {frame_type:#04x}")
            handler = self._pty_table.get((sess.state, pty_type))
            if handler is None:
                raise WrongState(f"pty {pty_type.name} is not allowed in state {sess.state.value}")
            if handler == "drop":
                return
            if pty_type is PtyType.ZSTD_DATA and not sess.zstd:
                raise ProtocolError("ZSTD_DATA without a negotiated zstd_compression",
                                    ErrorCode.BAD_MESSAGE)  # fmt: skip
            self._handlers()[handler](sess, (pty_type, data), out)
        except ProtocolError as exc:
            self._answer(sess, exc, out)


__all__ = ["Endpoint"]
