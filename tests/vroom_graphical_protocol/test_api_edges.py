"""Constructor checks and less travelled paths of both state machines."""

from __future__ import annotations

import openmux
import pytest
from vroom_graphical import (
    GraphicalClient,
    GraphicalServer,
    HandshakeFailed,
    LocalProtocolError,
    SessionClosed,
    VideoClosed,
    Viewport,
    channel_policy,
    control_spec,
    video_spec,
)

from .pair import Pair, of


def test_constructor_checks() -> None:
    mux = openmux.Connection(openmux.Config(is_client=True))
    with pytest.raises(ValueError, match="encodings"):
        GraphicalClient(mux, viewport=Viewport(1, 1), encodings=["xml"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="mode"):
        GraphicalClient(mux, viewport=Viewport(1, 1), mode="drive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version"):
        GraphicalClient(mux, viewport=Viewport(1, 1), version="1")
    with pytest.raises(ValueError, match="session"):
        GraphicalClient(mux, viewport=Viewport(1, 1), session="2")
    with pytest.raises(LocalProtocolError):
        GraphicalClient(mux, viewport=Viewport(0, 1))
    smux = openmux.Connection(openmux.Config(is_client=False))
    with pytest.raises(ValueError, match="encodings"):
        GraphicalServer(smux, encodings=[])
    with pytest.raises(ValueError, match="version"):
        GraphicalServer(smux, version="x")


def test_channel_specs_for_hello() -> None:
    mux = openmux.Connection(openmux.Config(is_client=True))
    client = GraphicalClient(mux, viewport=Viewport(1, 1), session="#4", video=True)
    assert client.channel_specs() == [control_spec("#4"), video_spec("#4")]


def test_control_channel_refused() -> None:
    p = Pair(hello_channels=[], policy=lambda spec: 4000)
    (failed,) = of(p.client_events, HandshakeFailed)
    assert failed.code == 4000
    assert not p.client.ready
    with pytest.raises(LocalProtocolError):
        p.client.set_mode("interact")


def test_video_closed_by_the_server_side() -> None:
    p = Pair(client={"video": True}, policy=channel_policy)
    vid = next(c.id for c in p.smux.channels.values() if c.name == "video")
    p.smux.close_channel(vid)
    _, client_events = p.pump()
    assert of(client_events, VideoClosed)
    assert not p.client.video_open


def test_client_close_ends_everything() -> None:
    p = Pair(client={"mode": "interact", "video": True})
    assert {c.name for c in p.smux.channels.values()} == {
        "vroom.graphical.control",
        "video",
        "pointer",
        "button",
    }
    p.client.close("done")
    server_events, _ = p.pump()
    assert of(server_events, SessionClosed)[0].reason == "done"
    assert p.smux.channels == {}
    with pytest.raises(LocalProtocolError, match="closed"):
        p.client.chat("x")


def test_bad_mode_and_pending_id() -> None:
    p = Pair(client={"mode": "voice"})
    with pytest.raises(LocalProtocolError, match="mode"):
        p.client.set_mode("sleep")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="invalid COMMAND"):
        p.client.command("click")  # selector missing: refused locally, nothing sent
    assert p.client.pending == set()
    first = p.client.command("back")
    p.client.pending.add(first + 1)  # type: ignore[operator]
    second = p.client.command("back")
    assert second == first + 2  # type: ignore[operator]


def test_server_ignores_frames_for_a_closed_session() -> None:
    p = Pair(client={"mode": "interact"})
    pid = p.client_channel("pointer")
    p.server.close_session()
    p.cmux.send_message(pid, 0x01, b"\0\0\0\0")  # the client has not seen the close yet
    server_events, _ = p.pump()
    assert server_events == []
