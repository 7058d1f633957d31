"""Channel names of a terminal session, the `#N` suffix, and the channel policy.

A terminal session is one `vroom.terminal.control` channel plus, once a PTY
was granted, one `vroom.terminal.pty` channel; the client opens both. A
second session on the same connection suffixes both with the same `#N`
(House): `vroom.terminal.control#2` pairs with `vroom.terminal.pty#2`. The
session key used across this package is the suffix itself: `""` for the
first session, `"#2"` after (the same convention as vroom_graphical).
"""

from __future__ import annotations

import enum

from openmux import DEFER, ChannelSpec
from openmux.suffixes import check_session, split_session

CONTROL = "vroom.terminal.control"
PTY = "vroom.terminal.pty"


class Role(enum.Enum):
    CONTROL = CONTROL
    PTY = PTY


_BY_BASE = {role.value: role for role in Role}


def session_key(number: int) -> str:
    """`""` for session 1 (no suffix), `"#N"` for the others: the House naming."""
    if number < 1:
        raise ValueError("session numbers start at 1")
    return "" if number == 1 else f"#{number}"


def channel_name(role: Role, session: str = "") -> str:
    return role.value + check_session(session)


def control_name(session: str = "") -> str:
    return channel_name(Role.CONTROL, session)


def pty_name(session: str = "") -> str:
    return channel_name(Role.PTY, session)


def parse_name(name: str) -> tuple[Role, str] | None:
    """(role, session) for one of our channel names, None for anyone else's."""
    split = split_session(name)
    if split is None:
        return None
    role = _BY_BASE.get(split[0])
    return None if role is None else (role, split[1])


def control_spec(session: str = "") -> ChannelSpec:
    return ChannelSpec(control_name(session), reliable=True, ordered=True)


def pty_spec(session: str = "") -> ChannelSpec:
    return ChannelSpec(pty_name(session), reliable=True, ordered=True)


def channel_policy(spec: ChannelSpec) -> int | str | None:
    """A server's `openmux.Config.channel_policy` for terminal channels.

    Control channels are accepted (reliable+ordered only); pty channels are
    deferred so that `TerminalServer` can accept them only after a successful
    PTY_RESPONSE (§1) and reject them otherwise. A name that is not ours gets
    1003: compose with other protocols' policies by calling this only where
    `parse_name()` is not None.
    """
    parsed = parse_name(spec.name)
    if parsed is None:
        return 1003
    if not (spec.reliable and spec.ordered):
        return 1003
    if parsed[0] is Role.PTY:
        return DEFER
    return None


__all__ = [
    "CONTROL",
    "PTY",
    "Role",
    "channel_name",
    "channel_policy",
    "check_session",
    "control_name",
    "control_spec",
    "parse_name",
    "pty_name",
    "pty_spec",
    "session_key",
]
