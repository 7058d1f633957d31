"""The `#N` session suffix of channel names, shared by the protocols on OpenMux.

VROOM-Terminal and VROOM-Graphical (House) run a second session on the same
connection by suffixing every channel of that session with the same `#N`:
`vroom.terminal.control#2` pairs with `vroom.terminal.pty#2`. The session
key is the suffix itself: `""` for the first session, `"#2"` after. N is
1..999999 without leading zeros, so one session has exactly one name.
"""

from __future__ import annotations

import re

_SUFFIX = re.compile(r"#[1-9][0-9]{0,5}")


def check_session(session: str) -> str:
    """Validate a session key (`""` or `"#N"`, N >= 1 without leading zeros)."""
    if session and not _SUFFIX.fullmatch(session):
        raise ValueError(f"session must be '' or '#N' (N >= 1), not {session!r}")
    return session


def split_session(name: str) -> tuple[str, str] | None:
    """`(base, session key)` of a channel name; None if its suffix is malformed
    (a peer's name: no error, it is simply not one of ours)."""
    base, sep, number = name.partition("#")
    if not sep:
        return base, ""
    suffix = sep + number
    if not _SUFFIX.fullmatch(suffix):
        return None
    return base, suffix


__all__ = ["check_session", "split_session"]
