"""Refused HELLOs, bad SELECT/PTY_RESPONSE, size limits and channel oddities, on the wire."""

from __future__ import annotations

import json

import openmux
import pytest
from vroom_terminal import (
    AuthInfo,
    CapabilityOffer,
    CapabilitySelect,
    CapabilitySelectMessage,
    ClientHello,
    Encoding,
    Error,
    ErrorReceived,
    ErrorSent,
    ExtensionsOffer,
    ExtensionsSelect,
    Limits,
    LocalProtocolError,
    PtyResponse,
    ServerHello,
    SessionClosed,
    SessionOpened,
    State,
    TerminalClient,
    TerminalServer,
    channel_policy,
    control_spec,
    encode_tlv,
    pty_spec,
)

from .helpers import RawPeer, TermPair, of_type
from .test_states import SELECT_NOAUTH, _client_to, _server_to


def _json_error(peer: RawPeer) -> dict[str, object]:
    [event] = [e for e in peer.raw_events if isinstance(e, openmux.MessageReceived)]
    assert event.type == 0xFF
    body = json.loads(event.data[8:])  # sent in JSON: nothing was agreed
    assert isinstance(body, dict)
    return body


def _closed_by_endpoint(peer: RawPeer) -> bool:
    return any(isinstance(e, openmux.ChannelClosed) for e in peer.raw_events)


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        (ClientHello(("cbor",), version=2), 400),
        (ClientHello(("xml", "yaml")), 415),
        (ClientHello(("cbor",), protocol="vroom-graphical"), 400),
    ],
)
def test_server_refuses_hello(hello: ClientHello, code: int) -> None:
    peer = _server_to("ControlOpen")
    peer.clear()
    events = peer.send(hello)
    assert _json_error(peer) | {"message": ""} == {"code": code, "message": "", "fatal": True}
    assert _closed_by_endpoint(peer)  # CLOSE_CHANNEL after the ERROR
    assert of_type(events, SessionClosed)
    assert peer.endpoint.state("") is State.DISCONNECTED


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"protocol":"vroom-terminal","version":1}', b"[1]", b'{"version":"1"}'],
)
def test_malformed_hello_is_400_and_retryable(payload: bytes) -> None:
    peer = _server_to("ControlOpen")
    peer.clear()
    peer.send_raw(0x01, encode_tlv(0x01, payload))
    assert _json_error(peer)["code"] == 400 and _json_error(peer)["fatal"] is False
    assert peer.endpoint.state("") is State.CONTROL_OPEN
    peer.send(ClientHello(("json", "cbor")))
    assert peer.endpoint.state("") is State.HELLO_EXCHANGE
    assert peer.endpoint.sessions[""].encoding is Encoding.JSON  # the client's first choice


def test_server_encoding_preference() -> None:
    peer = RawPeer(
        "server",
        lambda mux: TerminalServer(mux, encodings=(Encoding.JSON,)),
        server_policy=channel_policy,
    )
    peer.open(control_spec())
    peer.send(ClientHello(("cbor", "json")))
    hello = peer.received()[0]
    assert isinstance(hello, ServerHello) and hello.control_encoding == "json"


def test_oversized_control_payload_is_413_not_fatal() -> None:
    peer = RawPeer(
        "server",
        lambda mux: TerminalServer(mux, limits=Limits(max_control_payload=100)),
        server_policy=channel_policy,
    )
    peer.open(control_spec())
    peer.send(ClientHello(("cbor",)))
    peer.encoding = Encoding.CBOR
    peer.clear()
    events = peer.send_raw(0x02, encode_tlv(0x02, b"\xa0" + b"\x00" * 200))
    assert [(e.code, e.fatal) for e in of_type(events, ErrorSent)] == [(413, False)]
    assert peer.endpoint.state("") is State.HELLO_EXCHANGE


def test_unknown_and_mismatched_tlvs() -> None:
    peer = _server_to("PTYAllocated")
    peer.clear()
    codes = []
    for frame_type, data in [
        (0x12, encode_tlv(0x12, b"")),  # unknown type
        (0x31, encode_tlv(0x30, b"\x00" * 8)),  # Type byte != low byte
        (0x30, bytes.fromhex("00000030000000ff") + b"\x00" * 8),  # length != payload
        (0x30, b"\x00\x00"),  # shorter than a header
    ]:
        events = peer.send_raw(frame_type, data)
        codes += [(e.code, e.fatal) for e in of_type(events, ErrorSent)]
    assert codes == [(404, False), (400, False), (400, False), (400, False)]
    assert peer.endpoint.state("") is State.PTY_ALLOCATED


def test_malformed_window_ack_is_400_and_ignored() -> None:
    peer = _server_to("SessionActive")
    server: TerminalServer = peer.endpoint
    assert server.send_output("", b"x" * 100) == 100
    peer.pump()
    peer.clear()
    codes = []
    for payload in (b"\x00" * 4, (101).to_bytes(8, "big"), (50).to_bytes(8, "big"),
                    (40).to_bytes(8, "big")):  # fmt: skip
        events = peer.send_raw(0x01, payload, channel=peer.pty)
        codes.append([e.code for e in of_type(events, ErrorSent)])
    assert codes == [[400], [400], [], [400]]  # short, beyond sent, ok, backwards
    assert server.sessions[""].send_window.acked == 50


# ------------------------------------------------------------------ client


@pytest.mark.parametrize(
    ("hello", "code"),
    [(ServerHello("cbor", version=2), 400), (ServerHello("xml"), 415),
     (ServerHello("cbor", protocol="x"), 400)],
)  # fmt: skip
def test_client_refuses_server_hello(hello: ServerHello, code: int) -> None:
    peer = _client_to("ControlOpen")
    peer.clear()
    events = peer.send(hello)
    assert _json_error(peer)["code"] == code
    assert of_type(events, SessionClosed) and _closed_by_endpoint(peer)


@pytest.mark.parametrize(
    ("offered", "granted"), [(None, 4096), (4096, 8192), (4096, None), (4096, 4096)]
)
def test_client_checks_the_granted_window(offered: int | None, granted: int | None) -> None:
    peer = RawPeer("client", lambda mux: TerminalClient(mux, offer=None))
    client: TerminalClient = peer.endpoint
    client.open_session()
    peer.pump()
    peer.send(ServerHello("cbor"))
    peer.encoding = Encoding.CBOR
    client.offer(CapabilityOffer(extensions=ExtensionsOffer(flow_control=offered)))
    peer.pump()
    peer.clear()
    select = CapabilitySelect(AuthInfo(False), extensions=ExtensionsSelect(flow_control=granted))
    events = peer.send(CapabilitySelectMessage(select))
    valid = granted is None or (offered is not None and 0 < granted <= offered)
    if valid:
        assert client.state() is State.PTY_REQUEST
    else:
        assert [(e.code, e.fatal) for e in of_type(events, ErrorSent)] == [(400, True)]
        assert client.state() is State.DISCONNECTED


def test_client_refuses_select_of_another_version() -> None:
    peer = _client_to("CapabilityNegotiation")
    events = peer.send(CapabilitySelectMessage(CapabilitySelect(AuthInfo(False),
                                                                protocol_version=2)))  # fmt: skip
    assert [(e.code, e.fatal) for e in of_type(events, ErrorSent)] == [(400, True)]


def test_client_refuses_pty_response_for_another_channel() -> None:
    peer = _client_to("PTYRequest+pending")
    events = peer.send(PtyResponse(True, "vroom.terminal.pty#2"))
    assert [(e.code, e.fatal) for e in of_type(events, ErrorSent)] == [(400, True)]
    assert peer.endpoint.state("") is State.DISCONNECTED


def test_fatal_error_from_the_server_then_close() -> None:
    peer = _client_to("PTYRequest")
    events = peer.send(Error(503, "server limit", True))
    assert of_type(events, ErrorReceived)[0].fatal
    assert peer.endpoint.state("") is State.CLOSING
    peer.raw.close_channel(peer.control or 0)
    events = peer.pump()
    assert of_type(events, SessionClosed) and peer.endpoint.state("") is State.DISCONNECTED


def test_server_send_error_fatal_closes() -> None:
    pair = TermPair()
    pair.client.open_session()
    _, s = pair.pump()
    assert of_type(s, SessionOpened)
    pair.server.send_error("", 503, "over the session limit", fatal=True)
    c, _ = pair.pump()
    assert [(e.code, e.fatal) for e in of_type(c, ErrorReceived)] == [(503, True)]
    assert of_type(c, SessionClosed)
    with pytest.raises(LocalProtocolError):
        pair.server.send_error("", 500, "gone")


def test_control_channel_rejected() -> None:
    pair = TermPair(server_config={"channel_policy": lambda spec: 4002})
    pair.client.open_session("#4")
    c, s = pair.pump()
    [closed] = of_type(c, SessionClosed)
    assert closed.session == "#4" and "4002" in closed.reason
    assert not s


def test_terminal_channels_opened_by_the_server_are_closed() -> None:
    pair = TermPair()
    pair.pair.server.open_channel(control_spec("#5"))
    pair.pair.server.open_channel(pty_spec("#6"))
    pair.pump()
    assert not pair.pair.server.channels and not pair.pair.client.channels
    assert pair.client.state("#5") is State.DISCONNECTED


def test_control_channel_listed_in_mux_hello_is_adopted() -> None:
    pair = TermPair(client_config={"channels": [control_spec()]})
    assert pair.client.state() is State.PTY_REQUEST  # HELLO, OFFER, SELECT ran at once
    assert pair.server.state() is State.PTY_REQUEST


def test_pty_channel_opened_without_defer_is_closed() -> None:
    peer = RawPeer("server", lambda mux: TerminalServer(mux))  # accept-all policy
    peer.open(control_spec())
    peer.send(ClientHello(("cbor",)))
    peer.encoding = Encoding.CBOR
    peer.clear()
    events = peer.open(pty_spec())
    assert [e.code for e in of_type(events, ErrorSent)] == [409]
    assert not [c for c in peer.pair.server.channels.values() if c.name == "vroom.terminal.pty"]


def test_select_reaches_client_with_noauth() -> None:
    peer = _client_to("CapabilityNegotiation")
    peer.send(CapabilitySelectMessage(SELECT_NOAUTH))
    assert peer.endpoint.state("") is State.PTY_REQUEST


def test_batched_open_message_close_never_raises() -> None:
    """The mux hands over events after a whole batch: by then the channels an
    event names may be closed already. Nothing may raise, nothing may be sent
    on a dead channel."""
    peer = RawPeer("server", lambda mux: TerminalServer(mux), server_policy=channel_policy)
    peer.raw.open_channel(control_spec())
    peer.pair.to_server()  # OPEN_CHANNEL reaches the server's mux; its events are dropped here
    acks = peer.pair.to_client()
    [opened] = [e for e in acks if isinstance(e, openmux.ChannelOpened)]
    cid = opened.channel.id
    type_, data = 0x01, encode_tlv(0x01, b"not json")  # a bad HELLO: the server must answer
    peer.raw.send_message(cid, type_, data)
    peer.raw.close_channel(cid)
    mux_events = peer.pair.to_server()
    server: TerminalServer = peer.endpoint
    # replay the channel-open event the first batch produced, then this batch
    events = server.handle_event(openmux.ChannelOpened(opened.channel, None, False))
    for event in mux_events:
        events += server.handle_event(event)
    assert of_type(events, SessionClosed)
    assert server.state() is State.DISCONNECTED
    peer.pump()
    assert not peer.pair.server.channels


def test_batched_pty_close_then_output() -> None:
    peer = _server_to("SessionActive")
    server: TerminalServer = peer.endpoint
    peer.raw.close_channel(peer.pty or 0)
    mux_events = peer.pair.to_server()
    assert server.send_credit("") == 0 and server.send_output("", b"late") == 0
    for event in mux_events:
        server.handle_event(event)
    assert server.state() is State.DISCONNECTED
