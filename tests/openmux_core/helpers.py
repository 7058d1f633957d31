"""Small builders shared by the unit and property tests."""

from __future__ import annotations

import json
from typing import Any

from openmux import Config, Connection, ControlType, encode_frame
from openmux.frame import decode_message


def ctl(type_: int, body: Any) -> bytes:
    return encode_frame(0, type_, json.dumps(body, separators=(",", ":")).encode())


def hello(channels: list[Any] | None = None, **extra: Any) -> bytes:
    return ctl(ControlType.HELLO, {"version": [0, 1, 0], "channels": channels or [], **extra})


def chan(name: str, reliable: bool = True, ordered: bool = True) -> dict[str, Any]:
    return {"name": name, "reliable": reliable, "ordered": ordered}


def server(
    channels: list[Any] | None = None, hello_extra: dict[str, Any] | None = None, **cfg: Any
) -> Connection:
    """A message-mode server that has accepted a HELLO for `channels` (ids 1, 2, ...)."""
    conn = Connection(Config(is_client=False, **cfg), mode="message")
    conn.initiate(0.0)
    conn.receive_message(hello(channels, **(hello_extra or {})), 0.0)
    conn.messages_to_send()
    return conn


def sent(conn: Connection) -> list[tuple[int, int, int, Any]]:
    """What `conn` queued, decoded: (channel, type, flags, JSON body or raw payload)."""
    out = []
    for message in conn.messages_to_send():
        channel, type_, flags, payload = decode_message(message)
        body: Any = payload
        if channel == 0 and type_ not in (ControlType.PING, ControlType.PONG) and not flags:
            body = json.loads(payload)
        out.append((channel, type_, flags, body))
    return out


def control_sent(conn: Connection) -> list[tuple[str, Any]]:
    """Channel-0 messages `conn` queued as (TYPE NAME, body)."""
    return [(ControlType(t).name, body) for c, t, _, body in sent(conn) if c == 0]
