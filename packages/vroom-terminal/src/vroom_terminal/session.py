"""Per-session bookkeeping shared by the client and the server state machines."""

from __future__ import annotations

from .capabilities import CapabilityOffer, CapabilitySelect
from .codec import Encoding
from .flow import AckWindow, SendWindow
from .messages import ExitStatus, PtyRequest
from .states import State


class Session:
    """One terminal session: a control channel, later a pty channel.

    `key` is the channel-name suffix (`""`, `"#2"` ...). Read `state` and the
    negotiated values freely; change them only through the endpoint's methods.
    """

    __slots__ = (
        "ack_window",
        "auth_pending",
        "control_id",
        "encoding",
        "eof",
        "key",
        "offer",
        "overrun_reported",
        "pending_exit",
        "pty_granted",
        "pty_id",
        "pty_pending",
        "pty_request",
        "select",
        "send_window",
        "started",
        "state",
    )

    def __init__(self, key: str, offer: CapabilityOffer | None = None) -> None:
        self.key = key
        self.state = State.DISCONNECTED
        self.control_id: int | None = None
        self.pty_id: int | None = None
        self.encoding: Encoding | None = None
        self.offer = offer
        """Client: the offer to send (preset or sent). Server: the one received."""
        self.select: CapabilitySelect | None = None
        self.auth_pending = False
        self.pty_pending = False
        self.pty_request: PtyRequest | None = None
        self.pty_granted = False
        self.started = False
        """SHELL/EXEC accepted: the session has started (no more SET_ENV/PTY/SHELL)."""
        self.eof = False
        self.send_window = SendWindow(None)
        self.ack_window = AckWindow(None)
        self.pending_exit: ExitStatus | None = None
        self.overrun_reported = False

    @property
    def live(self) -> bool:
        return self.state is not State.DISCONNECTED

    @property
    def zstd(self) -> bool:
        return self.select is not None and self.select.extensions.zstd_compression

    def __repr__(self) -> str:
        return f"<Session {self.key or '#1'} {self.state.value}>"


__all__ = ["Session"]
