"""Channel names of a graphical session, the `#N` suffix, and the channel policy.

A graphical session is one `vroom.graphical.control` channel plus, while in
interact mode, `pointer` and `button`, and on the WebSocket path `video`.
A second session on the same connection suffixes every one of its channels
with the same `#N` (House, as VROOM-Terminal does): `vroom.graphical.control#2`
pairs with `pointer#2`, `button#2` and `video#2`. The session key used across
this package is the suffix itself: `""` for the first session, `"#2"` after.
"""

from __future__ import annotations

import enum

from openmux import DEFER, ChannelSpec
from openmux.suffixes import check_session, split_session

CONTROL = "vroom.graphical.control"
POINTER = "pointer"
BUTTON = "button"
VIDEO = "video"


class Role(enum.Enum):
    CONTROL = CONTROL
    POINTER = POINTER
    BUTTON = BUTTON
    VIDEO = VIDEO


_BY_BASE = {role.value: role for role in Role}


def channel_name(role: Role, session: str = "") -> str:
    return role.value + check_session(session)


def parse_name(name: str) -> tuple[Role, str] | None:
    """(role, session) for one of our channel names, None for anyone else's."""
    split = split_session(name)
    if split is None:
        return None
    role = _BY_BASE.get(split[0])
    return None if role is None else (role, split[1])


def control_spec(session: str = "") -> ChannelSpec:
    return ChannelSpec(channel_name(Role.CONTROL, session), reliable=True, ordered=True)


def pointer_spec(session: str = "") -> ChannelSpec:
    # Unreliable and unordered: a stale position is worthless once a newer one exists.
    return ChannelSpec(
        channel_name(Role.POINTER, session), reliable=False, ordered=False, max_retransmits=0
    )


def button_spec(session: str = "") -> ChannelSpec:
    return ChannelSpec(channel_name(Role.BUTTON, session), reliable=True, ordered=True)


def video_spec(session: str = "") -> ChannelSpec:
    return ChannelSpec(channel_name(Role.VIDEO, session), reliable=True, ordered=True)


def channel_policy(spec: ChannelSpec) -> int | str | None:
    """A server's `openmux.Config.channel_policy` for graphical channels.

    Control and video are accepted; pointer and button are deferred so that
    `GraphicalServer` can decide from the session's mode (a `ChannelRequested`
    event reaches it). In HELLO nothing can be deferred, so input channels
    asked for there are left out of WELCOME, which is right: every session
    starts in view. A name that is not ours gets 1003 (unsupported): compose
    with other protocols' policies by calling this only for names where
    `parse_name()` is not None.
    """
    parsed = parse_name(spec.name)
    if parsed is None:
        return 1003
    if parsed[0] in (Role.POINTER, Role.BUTTON):
        return DEFER
    return None


__all__ = [
    "BUTTON",
    "CONTROL",
    "POINTER",
    "VIDEO",
    "Role",
    "button_spec",
    "channel_name",
    "channel_policy",
    "check_session",
    "control_spec",
    "parse_name",
    "pointer_spec",
    "video_spec",
]
