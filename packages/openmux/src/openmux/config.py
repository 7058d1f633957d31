"""Connection configuration: limits, timers, auth and channel policy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .channels import ChannelSpec
from .codes import MIN_MESSAGE_SIZE, VERSION

DEFER: Final = "defer"
"""Returned by a channel policy to answer later with accept/reject_channel()."""

ChannelPolicy = Callable[[ChannelSpec], "int | str | None"]
"""Decides on a channel the peer asked for: None accepts, an int rejects with
that code, `DEFER` (dynamic opens only; in HELLO it means "not granted") emits
`ChannelRequested` instead."""

Authenticator = Callable[["Mapping[str, Any] | None"], bool]
"""Server side: given HELLO's `auth` object (or None), accept or refuse."""


def accept_all(spec: ChannelSpec) -> int | str | None:
    return None


@dataclass
class Config:
    """Settings for one `Connection`. Times are in seconds, sizes in bytes.

    `max_message_size` is what we announce (0 = no limit); the connection uses
    the negotiated minimum. `max_reassembly` caps any message we receive,
    fragmented or EXTENDED, whatever was negotiated; `max_reassembly_total`
    caps the bytes held for all channels' unfinished fragmented messages
    together, so 254 half-sent messages cannot add up to gigabytes.
    `max_control_message` caps a channel-0 message before its JSON is parsed.
    """

    is_client: bool
    application: str | None = None
    channels: Sequence[ChannelSpec] = ()
    token: str | None = None
    authenticate: Authenticator | None = None
    channel_policy: ChannelPolicy = accept_all
    extensions: Sequence[str] = ("fragmentation",)
    max_message_size: int = 65535
    max_reassembly: int = 16 * 1024 * 1024
    max_reassembly_total: int = 64 * 1024 * 1024
    max_control_message: int = 1024 * 1024
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    hello_timeout: float = 10.0
    close_timeout: float = 1.0
    version: tuple[int, int, int] = VERSION
    hello_extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_message_size < 0 or 0 < self.max_message_size < MIN_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be 0 (no limit) or >= {MIN_MESSAGE_SIZE}")
        if self.max_reassembly <= 0 or self.max_reassembly_total <= 0:
            raise ValueError("max_reassembly and max_reassembly_total must be > 0")
        if self.max_control_message <= 0:
            raise ValueError("max_control_message must be > 0")
        times = (self.ping_interval, self.ping_timeout, self.hello_timeout, self.close_timeout)
        if not all(math.isfinite(t) for t in times):
            raise ValueError("times must be finite")
        if self.ping_interval < 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval must be >= 0 and ping_timeout > 0")
        if self.hello_timeout <= 0 or self.close_timeout < 0:
            raise ValueError("hello_timeout must be > 0 and close_timeout >= 0")
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ValueError("channel names must be unique")

    @property
    def auth_required(self) -> bool:
        """A server with neither token nor authenticator ignores `auth` (`--no-auth`)."""
        return self.token is not None or self.authenticate is not None

    def check_token(self, auth: Mapping[str, Any] | None, transport_authenticated: bool) -> bool:
        """Server side: the House auth rules of OPENMUX.md §2 and §5.11/§5.14.

        The transport (a WebSocket upgrade with a valid `Authorization: Bearer`)
        may have authenticated the peer already; HELLO's `auth`, when present,
        must be valid too: "if both are present, both must be valid". An
        `authenticate` callback replaces the token comparison.
        """
        if not self.auth_required:
            return True
        if auth is None:
            if transport_authenticated:
                return True
            return self.authenticate is not None and bool(self.authenticate(None))
        if self.authenticate is not None:
            return bool(self.authenticate(auth))
        token = auth.get("token")
        if not isinstance(token, str) or self.token is None:
            return False
        import hmac  # here: only a server checks tokens (hashlib costs a client ~1 ms)

        return hmac.compare_digest(token.encode(), self.token.encode())
