"""Connection configuration: limits, timers, auth and channel policy."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .channels import ChannelSpec
from .codes import VERSION

DEFER: Final = "defer"
"""Returned by a channel policy to answer later with accept/reject_channel()."""

ChannelPolicy = Callable[[ChannelSpec], "int | None | str"]
"""Decides on a channel the peer asked for: None accepts, an int rejects with
that code, `DEFER` (dynamic opens only) emits `ChannelRequested` instead."""

Authenticator = Callable[["Mapping[str, Any] | None"], bool]
"""Server side: given HELLO's `auth` object (or None), accept or refuse."""


def accept_all(spec: ChannelSpec) -> int | None | str:
    return None


@dataclass
class Config:
    """Settings for one `Connection`. Times are in seconds, sizes in bytes.

    `max_message_size` is what we announce (0 = no limit); the connection uses
    the negotiated minimum. `max_reassembly` caps any message we receive,
    fragmented or EXTENDED, whatever was negotiated.
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
    max_control_message: int = 1024 * 1024
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    hello_timeout: float = 10.0
    close_timeout: float = 1.0
    version: tuple[int, int, int] = VERSION
    hello_extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_message_size < 0:
            raise ValueError("max_message_size must be >= 0 (0 = no limit)")
        if self.max_reassembly <= 0:
            raise ValueError("max_reassembly must be > 0")
        if self.ping_interval < 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval must be >= 0 and ping_timeout > 0")
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ValueError("channel names must be unique")

    def check_token(self, auth: Mapping[str, Any] | None, transport_authenticated: bool) -> bool:
        """Server side: the House auth rules of OPENMUX.md §2 and §5.11/§5.14."""
        if self.authenticate is not None:
            return bool(self.authenticate(auth))
        if self.token is None:
            return True
        if auth is None:
            return transport_authenticated
        token = auth.get("token")
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode(), self.token.encode())
