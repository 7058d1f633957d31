"""Unit tests of `openmux.Connection`: one rule per test, beyond the golden vectors."""

from __future__ import annotations

import json
import struct

import pytest
from openmux import (
    DEFER,
    MAGIC,
    ChannelClosed,
    ChannelOpened,
    ChannelRejected,
    ChannelRequested,
    ChannelSpec,
    CloseCode,
    Config,
    Connection,
    ConnectionClosedError,
    ConnectionTerminated,
    ControlType,
    ErrorReceived,
    HandshakeCompleted,
    LocalProtocolError,
    MessageReceived,
    PongReceived,
    State,
    encode_frame,
)
from openmux.testing import Pair

from .helpers import chan, control_sent, ctl, hello, sent, server

U32 = struct.Struct(">I")


def reliable_pair(**server_cfg: object) -> Pair:
    return Pair(
        Config(
            is_client=True,
            channels=[ChannelSpec("data"), ChannelSpec("mouse", reliable=False, ordered=False)],
        ),
        Config(is_client=False, **server_cfg),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------- close


class TestClose:
    def test_answer_echoes_code(self) -> None:
        pair = reliable_pair()
        pair.client.close(4321, "app reason", 1.0)
        assert pair.client.state is State.CLOSING
        _, server_events = pair.pump()
        assert server_events == [ConnectionTerminated(4321, "app reason", by_peer=True)]
        assert pair.client_events[-1] == ConnectionTerminated(4321, "app reason", by_peer=False)
        assert pair.client.state is State.CLOSED and pair.server.state is State.CLOSED

    def test_answer_is_a_close_with_the_same_code(self) -> None:
        conn = server()
        conn.receive_message(ctl(ControlType.CLOSE, {"code": 4104, "reason": "x"}), 1.0)
        assert control_sent(conn) == [("CLOSE", {"code": 4104})]
        assert conn.close_code == 4104 and conn.close_reason == "x" and conn.closed_by_peer

    def test_close_without_code_is_answered_with_1002(self) -> None:
        conn = server()
        events = conn.receive_message(encode_frame(0, ControlType.CLOSE, b"garbage"), 1.0)
        assert events == [ConnectionTerminated(1002, "", by_peer=True)]
        assert control_sent(conn) == [("CLOSE", {"code": 1002})]

    def test_close_timeout_is_one_second_by_default(self) -> None:
        conn = server()
        conn.close(1000, "bye", 5.0)
        assert conn.get_timer() == 6.0
        assert conn.handle_timer(5.99) == []
        assert conn.handle_timer(6.0) == [ConnectionTerminated(1000, "bye", by_peer=False)]
        assert conn.get_timer() is None

    def test_close_timeout_is_configurable(self) -> None:
        conn = server(close_timeout=0.25)
        conn.close(now=1.0)
        assert conn.get_timer() == 1.25

    def test_nothing_is_sent_after_close(self) -> None:
        conn = server([chan("a")])
        conn.close(1000, "", 0.0)
        sent(conn)
        with pytest.raises(ConnectionClosedError):
            conn.send_message(1, 1, b"x")
        with pytest.raises(ConnectionClosedError):
            conn.open_channel("b")
        with pytest.raises(ConnectionClosedError):
            conn.ping(0.0)
        with pytest.raises(ConnectionClosedError):
            conn.send_error(1000)
        # frames that arrive meanwhile are dropped, PING included (no PONG)
        assert conn.receive_message(encode_frame(1, 1, b"x"), 0.1) == []
        assert conn.receive_message(encode_frame(0, ControlType.PING, b"\0\0\0\1"), 0.1) == []
        assert conn.messages_to_send() == []

    def test_close_is_idempotent(self) -> None:
        conn = server()
        conn.close(1000, "first", 0.0)
        conn.close(1001, "second", 0.0)
        assert [t for t, _ in control_sent(conn)] == ["CLOSE"]
        assert conn.close_code == 1000

    def test_simultaneous_close(self) -> None:
        pair = reliable_pair()
        pair.client.close(1000, "c", 0.0)
        pair.server.close(1001, "s", 0.0)
        pair.pump()
        assert pair.client_events[-1] == ConnectionTerminated(1000, "c", by_peer=False)
        assert pair.server_events[-1] == ConnectionTerminated(1001, "s", by_peer=False)

    def test_fragmented_close_is_understood_while_closing(self) -> None:
        conn = server()
        conn.close(1000, "", 0.0)
        body = json.dumps({"code": 1000}).encode()
        assert conn.receive_message(encode_frame(0, ControlType.CLOSE, body[:3], 0x02), 0.1) == []
        events = conn.receive_message(encode_frame(0, ControlType.CLOSE, body[3:], 0x06), 0.1)
        assert events == [ConnectionTerminated(1000, "", by_peer=False)]

    def test_close_before_initiate(self) -> None:
        conn = Connection(Config(is_client=True))
        conn.close(1000, "never started")
        assert conn.state is State.CLOSED and conn.messages_to_send() == []

    def test_transport_lost(self) -> None:
        conn = server()
        assert conn.connection_lost(2.0) == [
            ConnectionTerminated(1001, "transport closed", by_peer=True)
        ]
        assert conn.connection_lost(3.0) == []
        assert conn.receive_message(b"anything", 3.0) == []

    def test_transport_lost_while_closing_ends_our_close(self) -> None:
        conn = server()
        conn.close(4000, "go", 0.0)
        assert conn.connection_lost(0.5) == [ConnectionTerminated(4000, "go", by_peer=False)]

    def test_closed_connection_ignores_timers(self) -> None:
        conn = server()
        conn.connection_lost(0.0)
        assert conn.get_timer() is None and conn.handle_timer(100.0) == []


# -------------------------------------------------------------- timers


class TestTimers:
    def test_server_arms_hello_timer(self) -> None:
        conn = Connection(Config(is_client=False, hello_timeout=3.0))
        assert conn.get_timer() is None
        conn.initiate(10.0)
        assert conn.get_timer() == 13.0

    def test_hello_cancels_hello_timer(self) -> None:
        conn = Connection(Config(is_client=False, ping_interval=0), mode="message")
        conn.initiate(0.0)
        conn.receive_message(hello(), 1.0)
        assert conn.get_timer() is None

    def test_client_has_no_timer_before_welcome(self) -> None:
        conn = Connection(Config(is_client=True))
        conn.initiate(0.0)
        assert conn.get_timer() is None and conn.handle_timer(1e9) == []

    def test_ping_interval_zero_disables_keepalive(self) -> None:
        conn = server(ping_interval=0)
        assert conn.get_timer() is None
        assert conn.handle_timer(1e6) == [] and conn.messages_to_send() == []

    def test_ping_at_interval_after_last_receipt(self) -> None:
        conn = server(ping_interval=5.0)
        assert conn.get_timer() == 5.0
        conn.receive_message(encode_frame(0, ControlType.PING, b"\0\0\0\0"), 3.0)
        sent(conn)
        assert conn.get_timer() == 8.0
        assert conn.handle_timer(7.9) == [] and conn.messages_to_send() == []
        conn.handle_timer(8.0)
        assert sent(conn) == [(0, ControlType.PING, 0, U32.pack(8000))]
        assert conn.get_timer() == 8.0 + 10.0

    def test_manual_ping_has_a_timeout_even_without_interval(self) -> None:
        conn = server(ping_interval=0, ping_timeout=2.0)
        conn.ping(1.0)
        assert conn.get_timer() == 3.0
        events = conn.handle_timer(3.0)
        assert events == [ConnectionTerminated(1001, "ping timeout", by_peer=False)]

    def test_only_one_ping_outstanding_sets_the_deadline(self) -> None:
        conn = server(ping_timeout=4.0)
        conn.ping(1.0)
        conn.ping(2.0)
        assert conn.get_timer() == 5.0

    def test_pong_gives_rtt(self) -> None:
        pair = reliable_pair()
        pair.now = 2.0
        pair.client.ping(2.0)
        pair.to_server()
        pair.now = 2.5
        assert pair.to_client() == [PongReceived(0.5)]
        assert pair.client.rtt == 0.5

    def test_rtt_survives_timestamp_wrap(self) -> None:
        conn = server()
        echo = 0xFFFFFF00  # sent just before the 32-bit millisecond clock wrapped
        now = (0x1_0000_0000 + 0x10) / 1000  # 0x110 ms later, after the wrap
        events = conn.receive_message(
            encode_frame(0, ControlType.PONG, struct.pack(">II", echo, 0)), now
        )
        assert events == [PongReceived(0x110 / 1000)]

    def test_ping_timeout_reason_and_close_frame(self) -> None:
        pair = reliable_pair(ping_interval=10.0, ping_timeout=5.0)
        pair.server.ping(1.0)
        pair.server.messages_to_send()  # lost on the wire
        events = pair.server.handle_timer(6.0)
        assert events == [ConnectionTerminated(1001, "ping timeout", by_peer=False)]
        assert control_sent(pair.server) == [("CLOSE", {"code": 1001, "reason": "ping timeout"})]

    def test_lenient_timeout_extends_while_anything_arrives(self) -> None:
        conn = server([chan("a")], ping_interval=10.0, ping_timeout=5.0)
        conn.handle_timer(10.0)
        sent(conn)
        for t in (12.0, 16.0, 20.0, 24.0):
            conn.receive_message(encode_frame(1, 1, b"."), t)
            assert conn.handle_timer(t + 4.99) == []
        assert conn.state is State.OPEN
        assert conn.get_timer() == 29.0
        assert conn.handle_timer(29.0)[0] == ConnectionTerminated(1001, "ping timeout")

    @pytest.mark.parametrize("mode", ["message", "stream"])
    def test_timers_never_spin(self, mode: str) -> None:
        """After handle_timer(now) the next timer is in the future (regression:
        the lenient ping timeout used to re-arm at `now` forever)."""
        pair = Pair(
            Config(is_client=True, channels=[ChannelSpec("a")], ping_interval=3, ping_timeout=2),
            Config(is_client=False, ping_interval=3, ping_timeout=2),
            mode=mode,  # type: ignore[arg-type]
        )
        pair.client.send_message(1, 1, b"x")
        pair.server.ping(0.5)
        pair.to_server()  # client's data reaches the server; the PING is dropped:
        pair.server.messages_to_send()
        for conn in (pair.client, pair.server):
            now = 0.0
            for _ in range(50):
                when = conn.get_timer()
                if when is None:
                    break
                now = max(now, when)
                conn.handle_timer(now)
                later = conn.get_timer()
                assert later is None or later > now
                conn.messages_to_send()
            assert conn.state is State.CLOSED

    def test_pair_advance_runs_keepalive(self) -> None:
        pair = reliable_pair()
        pair.advance(30.0)
        assert any(isinstance(e, PongReceived) for e in pair.client_events)
        assert any(isinstance(e, PongReceived) for e in pair.server_events)
        pair.advance(1000.0)
        assert pair.client.state is State.OPEN and pair.server.state is State.OPEN
        with pytest.raises(ValueError):
            pair.advance(1.0)


# -------------------------------------------------------- fragmentation


class TestFragmentation:
    def test_send_fragments_only_over_the_limit(self) -> None:
        conn = server([chan("a")], hello_extra={"maxMessageSize": 100})
        conn.send_message(1, 7, b"x" * 100)
        assert sent(conn) == [(1, 7, 0, b"x" * 100)]
        conn.send_message(1, 7, b"y" * 200)
        assert sent(conn) == [(1, 7, 0x02, b"y" * 100), (1, 7, 0x06, b"y" * 100)]
        conn.send_message(1, 7, b"")
        assert sent(conn) == [(1, 7, 0, b"")]

    @pytest.mark.parametrize(
        ("reliable", "ordered"), [(False, False), (True, False), (False, True)]
    )
    def test_too_large_for_unfragmentable_channel(self, reliable: bool, ordered: bool) -> None:
        conn = server([chan("u", reliable, ordered)], hello_extra={"maxMessageSize": 64})
        with pytest.raises(LocalProtocolError) as info:
            conn.send_message(1, 1, b"z" * 65)
        assert info.value.code == CloseCode.MESSAGE_TOO_LARGE
        assert conn.messages_to_send() == []
        conn.send_message(1, 1, b"z" * 64)  # at the limit is fine
        assert len(conn.messages_to_send()) == 1

    def test_unlimited_uses_extended_length(self) -> None:
        pair = Pair(
            Config(is_client=True, channels=[ChannelSpec("a")], max_message_size=0),
            Config(is_client=False, max_message_size=0),
        )
        assert pair.client.max_message_size == 0
        pair.client.send_message(1, 3, b"q" * 70000)
        (frame,) = pair.client._out
        assert frame[2] == 0x01 and len(frame) == 8 + 70000
        assert pair.to_server() == [MessageReceived(1, 3, b"q" * 70000)]

    def test_large_control_message_is_fragmented_and_reassembled(self) -> None:
        pair = reliable_pair(max_message_size=64)
        request_id = pair.client.open_channel("big", metadata={"blob": "m" * 500})
        assert len(pair.client._out) > 5
        _, server_events = pair.pump()
        opened = [e for e in pair.client_events if isinstance(e, ChannelOpened)]
        assert opened[-1].request_id == request_id
        assert server_events[0].channel.metadata == {"blob": "m" * 500}  # type: ignore[attr-defined]

    def test_memoryview_and_bytearray_payloads(self) -> None:
        pair = reliable_pair(max_message_size=64)
        pair.client.send_message(1, 1, bytearray(b"a" * 130))
        pair.client.send_message(1, 2, memoryview(b"b" * 10))
        assert pair.to_server() == [
            MessageReceived(1, 1, b"a" * 130),
            MessageReceived(1, 2, b"b" * 10),
        ]

    def test_single_fragment_message(self) -> None:
        conn = server([chan("a")])
        assert conn.receive_message(encode_frame(1, 1, b"one", 0x06), 0) == [
            MessageReceived(1, 1, b"one")
        ]

    def test_reassembly_total_budget(self) -> None:
        channels = [chan(f"c{i}") for i in range(4)]
        conn = server(channels, max_reassembly=1000, max_reassembly_total=1500)
        for cid in (1, 2, 3):
            events = conn.receive_message(encode_frame(cid, 1, b"." * 499, 0x02), 0)
            assert events == [] and conn.state is State.OPEN
        conn.receive_message(encode_frame(4, 1, b"." * 10, 0x02), 0)
        assert conn.state is State.CLOSING and conn.close_code == 4005

    def test_closing_a_channel_frees_its_reassembly(self) -> None:
        conn = server([chan("a"), chan("b")], max_reassembly_total=1000)
        conn.receive_message(encode_frame(1, 1, b"." * 900, 0x02), 0)
        conn.receive_message(ctl(ControlType.CLOSE_CHANNEL, {"id": 1}), 0)
        conn.receive_message(encode_frame(2, 1, b"." * 900, 0x02), 0)
        assert conn.state is State.OPEN
        conn.close_channel(2)
        assert conn._reassembly_bytes == 0

    def test_large_unfragmented_control_message_refused(self) -> None:
        conn = server(max_control_message=100)
        conn.receive_message(ctl(ControlType.ERROR, {"code": 1, "reason": "r" * 200}), 0)
        assert conn.close_code == 4005
        assert [t for t, _ in control_sent(conn)] == ["ERROR", "CLOSE"]

    def test_fragmented_control_message_limit(self) -> None:
        conn = server(max_control_message=100)
        conn.receive_message(encode_frame(0, ControlType.ERROR, b"{" + b" " * 60, 0x02), 0)
        conn.receive_message(encode_frame(0, ControlType.ERROR, b" " * 60, 0x02), 0)
        assert conn.close_code == 4005


# ------------------------------------------------------------- channels


def dyn_pair(**server_cfg: object) -> Pair:
    return Pair(Config(is_client=True), Config(is_client=False, **server_cfg))  # type: ignore[arg-type]


class TestChannels:
    def test_server_initiated_open(self) -> None:
        pair = dyn_pair()
        request_id = pair.server.open_channel("files", metadata={"root": "/"})
        ((_, _, _, body),) = sent_peek(pair.server)
        assert body["id"] == 1 and body["requestId"] == request_id
        client_events, server_events = pair.pump()
        (opened_c,) = client_events
        (opened_s,) = server_events
        assert isinstance(opened_c, ChannelOpened) and not opened_c.locally_initiated
        assert isinstance(opened_s, ChannelOpened) and opened_s.locally_initiated
        assert opened_c.channel == opened_s.channel and opened_c.channel.id == 1
        assert opened_c.channel.metadata == {"root": "/"}

    def test_client_ack_echoes_the_servers_id(self) -> None:
        pair = dyn_pair()
        pair.server.open_channel("a")
        pair.server.open_channel("b")
        pair.to_client()
        acks = control_sent(pair.client)
        assert [(t, b["id"], b["requestId"]) for t, b in acks] == [
            ("CHANNEL_ACK", 1, 1),
            ("CHANNEL_ACK", 2, 2),
        ]

    def test_client_rejection_frees_the_reserved_id(self) -> None:
        pair = dyn_pair()
        pair.client.config.channel_policy = lambda spec: 4000
        pair.server.open_channel("a")
        _client_events, server_events = pair.pump()
        assert server_events == [ChannelRejected(1, "a", 4000, "refused by the application")]
        assert not pair.server._reserved_ids and not pair.server._pending_names
        pair.server.open_channel("a")  # the name is free again
        pair.client.config.channel_policy = lambda spec: None
        pair.pump()
        assert set(pair.client.channels) == set(pair.server.channels) == {2}

    def test_crossing_opens_with_the_same_name_are_both_rejected(self) -> None:
        pair = dyn_pair()
        pair.client.open_channel("same")
        pair.server.open_channel("same")
        pair.pump()
        rejected_c = [e for e in pair.client_events if isinstance(e, ChannelRejected)]
        rejected_s = [e for e in pair.server_events if isinstance(e, ChannelRejected)]
        assert [e.code for e in rejected_c + rejected_s] == [1002, 1002]
        assert pair.client.channels == pair.server.channels == {}

    def test_crossing_opens_never_share_an_id(self) -> None:
        pair = dyn_pair()
        pair.server.open_channel("s")  # reserves id 1
        pair.client.open_channel("c")
        pair.pump()
        assert pair.client.channels.keys() == pair.server.channels.keys() == {1, 2}
        assert pair.server.channels[1].name == "s" and pair.server.channels[2].name == "c"

    def test_ids_are_reused_last(self) -> None:
        pair = dyn_pair()
        for name in "abc":
            pair.client.open_channel(name)
        pair.pump()
        pair.client.close_channel(1)
        pair.client.open_channel("d")
        pair.pump()
        assert pair.server.channels[4].name == "d"

    def test_server_without_free_id_cannot_open(self) -> None:
        conn = server([chan(f"c{i}") for i in range(254)])
        assert len(conn.channels) == 254
        with pytest.raises(LocalProtocolError) as info:
            conn.open_channel("more")
        assert info.value.code == CloseCode.CHANNEL_FULL

    def test_hello_grants_stop_when_ids_run_out(self) -> None:
        conn = server([chan(f"c{i}") for i in range(300)])
        assert len(conn.channels) == 254

    def test_hello_duplicate_names_granted_once(self) -> None:
        conn = server([chan("a"), chan("a", reliable=False)])
        assert [c.name for c in conn.channels.values()] == ["a"]

    def test_deferred_request_reserves_an_id(self) -> None:
        conn = server(channel_policy=lambda spec: DEFER)
        events = conn.receive_message(
            ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("x")}), 0
        )
        assert events == [ChannelRequested(1, ChannelSpec("x"))]
        conn.config.channel_policy = lambda spec: None
        events = conn.receive_message(
            ctl(ControlType.OPEN_CHANNEL, {"requestId": 2, **chan("y")}), 0
        )
        assert isinstance(events[0], ChannelOpened) and events[0].channel.id == 2
        assert conn.accept_channel(1).id == 1
        with pytest.raises(LocalProtocolError):
            conn.accept_channel(1)
        with pytest.raises(LocalProtocolError):
            conn.reject_channel(1, 4000)

    def test_deferred_name_is_taken(self) -> None:
        conn = server(channel_policy=lambda spec: DEFER)
        conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("x")}), 0)
        with pytest.raises(LocalProtocolError):
            conn.open_channel("x")
        conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 2, **chan("x")}), 0)
        assert control_sent(conn)[-1] == (
            "CHANNEL_REJECT",
            {"requestId": 2, "code": 1002, "reason": "channel name 'x' is in use"},
        )

    def test_request_id_is_free_once_answered(self) -> None:
        conn = server()
        conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("x")}), 0)
        conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("y")}), 0)
        assert [t for t, _ in control_sent(conn)] == ["CHANNEL_ACK", "CHANNEL_ACK"]

    def test_policy_returning_other_string_is_unsupported(self) -> None:
        conn = server(channel_policy=lambda spec: "nope")
        conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("x")}), 0)
        assert control_sent(conn)[0][1]["code"] == 1003

    def test_close_channel_round_trip(self) -> None:
        pair = reliable_pair()
        channel = pair.client.close_channel(1, "done")
        _client_events, server_events = pair.pump()
        assert server_events == [ChannelClosed(channel, "done", True)]
        assert 1 not in pair.server.channels and 1 not in pair.client.channels

    def test_in_flight_frames_after_local_close_are_dropped_silently(self) -> None:
        pair = reliable_pair()
        pair.server.send_message(1, 1, b"in flight")
        pair.client.close_channel(1)
        client_events, server_events = pair.pump()
        assert client_events == []  # no MessageReceived, and no ERROR sent back:
        assert not any(isinstance(e, ErrorReceived) for e in server_events)

    def test_unknown_channel_is_reported_once_per_id(self) -> None:
        conn = server()
        for _ in range(3):
            conn.receive_message(encode_frame(7, 1, b"x"), 0)
        conn.receive_message(encode_frame(8, 1, b"x"), 0)
        assert control_sent(conn) == [
            ("ERROR", {"code": 4003, "channel": 7, "reason": "channel 7 is not open"}),
            ("ERROR", {"code": 4003, "channel": 8, "reason": "channel 8 is not open"}),
        ]

    def test_reopened_id_is_reported_again_after_close(self) -> None:
        pair = dyn_pair()
        pair.client.open_channel("a")
        pair.pump()
        pair.server.close_channel(1)
        pair.pump()
        pair.client.open_channel("b")
        pair.pump()
        assert pair.server.channels[2].name == "b"

    def test_describe_channel_hook(self) -> None:
        server_conn = Connection(Config(is_client=False), mode="message")
        server_conn.describe_channel = lambda ch: {"streamId": ch.id * 4, "transport": "stream"}
        server_conn.initiate(0)
        server_conn.receive_message(hello([chan("a")]), 0)
        server_conn.receive_message(ctl(ControlType.OPEN_CHANNEL, {"requestId": 1, **chan("b")}), 0)
        (welcome, ack) = control_sent(server_conn)
        assert welcome[1]["channels"] == [
            {"name": "a", "id": 1, "streamId": 4, "transport": "stream"}
        ]
        assert ack[1] == {
            "requestId": 1,
            "id": 2,
            "name": "b",
            "streamId": 8,
            "transport": "stream",
        }

    def test_channel_spec_json_round_trip(self) -> None:
        spec = ChannelSpec("v", False, False, 0, 250, {"codec": "h264"})
        assert spec.to_json() == {
            "name": "v",
            "reliable": False,
            "ordered": False,
            "maxRetransmits": 0,
            "maxPacketLifeTime": 250,
            "metadata": {"codec": "h264"},
        }
        pair = dyn_pair()
        pair.client.open_channel(spec)
        pair.pump()
        assert pair.server.channels[1].spec == spec
        assert not pair.server.channels[1].fragmentable and not spec.fragmentable


def sent_peek(conn: Connection) -> list[tuple[int, int, int, object]]:
    saved = list(conn._out)
    out = sent(conn)
    conn._out = saved
    return out


# ------------------------------------------------------------ handshake


class TestHandshake:
    def test_negotiation_both_sides_agree(self) -> None:
        pair = Pair(
            Config(is_client=True, max_message_size=0, extensions=["a", "b", "fragmentation"]),
            Config(
                is_client=False,
                max_message_size=4096,
                extensions=["fragmentation", "b", "c"],
                ping_interval=7,
                ping_timeout=3,
            ),
        )
        for conn in (pair.client, pair.server):
            assert conn.max_message_size == 4096
            assert conn.ping_interval == 7 and conn.ping_timeout == 3
        assert pair.client.extensions == ("b", "fragmentation")
        assert pair.server.extensions == ("fragmentation", "b")

    def test_welcome_version_common_major_lower_minor_server_patch(self) -> None:
        pair = Pair(
            Config(is_client=True, version=(0, 4, 9)), Config(is_client=False, version=(0, 2, 1))
        )
        assert pair.server.version == pair.client.version == (0, 2, 1)
        handshake = pair.server_events[0]
        assert isinstance(handshake, HandshakeCompleted) and handshake.peer_version == (0, 4, 9)

    def test_client_refuses_other_major_in_welcome(self) -> None:
        pair = Pair(
            Config(is_client=True, version=(0, 1, 0)),
            Config(is_client=False, version=(0, 1, 0)),
            handshake=False,
        )
        pair.to_server()
        (welcome,) = pair.server.messages_to_send()
        body = json.loads(welcome[6:])
        body["version"] = [3, 0, 0]
        pair.client.receive_message(ctl(ControlType.WELCOME, body), 0)
        assert pair.client.close_code == 4006
        assert pair.client.close_reason == "unsupported version 3.0.0 (client speaks 0.1.0)"

    def test_hello_fields_recorded_without_auth(self) -> None:
        conn = server(hello_extra={"auth": {"token": "t"}, "application": "vroom/0.1"}, token="t")
        assert conn.hello is not None and "auth" not in conn.hello
        assert conn.hello["application"] == "vroom/0.1"

    def test_client_hello_carries_token_application_and_extra(self) -> None:
        conn = Connection(
            Config(is_client=True, token="t", application="app/1", hello_extra={"x": 1}),
            mode="message",
        )
        conn.initiate(0)
        ((name, body),) = control_sent(conn)
        assert name == "HELLO" and body["auth"] == {"type": "token", "token": "t"}
        assert body["application"] == "app/1" and body["x"] == 1

    def test_authenticator_callback(self) -> None:
        seen: list[object] = []

        def check(auth: object) -> bool:
            seen.append(auth)
            return auth == {"type": "oauth", "jwt": "ok"}

        ok = server(hello_extra={"auth": {"type": "oauth", "jwt": "ok"}}, authenticate=check)
        assert ok.state is State.OPEN
        bad = server(hello_extra={"auth": {"type": "oauth", "jwt": "no"}}, authenticate=check)
        assert bad.close_code == 4000
        anonymous = server(authenticate=lambda auth: auth is None)
        assert anonymous.state is State.OPEN
        assert seen == [{"type": "oauth", "jwt": "ok"}, {"type": "oauth", "jwt": "no"}]

    @pytest.mark.parametrize(
        ("transport_ok", "auth", "accepted"),
        [
            (False, None, False),
            (True, None, True),
            (False, {"type": "token", "token": "good"}, True),
            (True, {"type": "token", "token": "good"}, True),
            (True, {"type": "token", "token": "bad"}, False),
            (True, {"type": "token"}, False),
            (True, "good", False),
            (False, {"type": "token", "token": 5}, False),
        ],
    )
    def test_transport_and_hello_auth_both_valid(
        self, transport_ok: bool, auth: object, accepted: bool
    ) -> None:
        conn = Connection(Config(is_client=False, token="good"), mode="message")
        conn.transport_authenticated = transport_ok
        conn.initiate(0)
        extra = {} if auth is None else {"auth": auth}
        conn.receive_message(hello(**extra), 0)
        if accepted:
            assert conn.state is State.OPEN
        else:
            assert conn.close_code == 4000
            assert [t for t, _ in control_sent(conn)] == ["CLOSE"]

    @pytest.mark.parametrize(
        "body",
        [
            b"\xff\xfe{}",
            b'{"version":[0,1,0],"maxMessageSize":NaN}',
            b'{"version":[0,1,0],"maxMessageSize":Infinity}',
            b"[" * 50000 + b"]" * 50000,
            b'{"version":' * 20000,
            b'{"version":[0,1]}',
            b'{"version":[0,1,-1]}',
            b'{"version":[0,true,0]}',
            b'{"version":[0,1,0],"channels":{}}',
            b'{"version":[0,1,0],"channels":[5]}',
            b'{"version":[0,1,0],"channels":[{"name":"","reliable":true,"ordered":true}]}',
            b'{"version":[0,1,0],"maxMessageSize":-1}',
            b'{"version":[0,1,0],"maxMessageSize":1.5}',
            b'{"version":[0,1,0],"maxMessageSize":true}',
            b'{"version":[0,1,0],"maxMessageSize":' + b"9" * 5000 + b"}",
            '{"version":[0,1,0]}'.encode("utf-16"),
        ],
    )
    def test_malformed_hello_is_4001(self, body: bytes) -> None:
        conn = Connection(Config(is_client=False, max_message_size=0), mode="message")
        conn.initiate(0)
        conn.receive_message(encode_frame(0, ControlType.HELLO, body), 0)
        assert conn.close_code == 4001, conn.close_reason

    def test_hello_channels_null_means_none(self) -> None:
        conn = Connection(Config(is_client=False), mode="message")
        conn.initiate(0)
        conn.receive_message(ctl(ControlType.HELLO, {"version": [0, 1, 0], "channels": None}), 0)
        assert conn.state is State.OPEN

    def test_optional_channel_fields_tolerated(self) -> None:
        conn = server(
            [
                {
                    "name": "v",
                    "reliable": False,
                    "ordered": False,
                    "maxRetransmits": "x",
                    "maxPacketLifeTime": 100,
                    "metadata": [1],
                }
            ]
        )
        channel = conn.channels[1]
        assert channel.max_retransmits is None and channel.max_packet_lifetime == 100
        assert channel.metadata is None

    @pytest.mark.parametrize(
        "change",
        [
            {"maxMessageSize": 1.5},
            {"maxMessageSize": -1},
            {"pingInterval": -1},
            {"pingTimeout": "x"},
            {"channels": {}},
            {"extensions": "fragmentation"},
            {"channels": [{"name": "a", "id": 0}]},
            {"channels": [{"name": "a", "id": 255}]},
            {"channels": [{"name": "a", "id": 1}, {"name": "b", "id": 1}]},
            {"channels": [{"name": "a", "id": 1}, {"name": "a", "id": 2}]},
            {"version": None},
        ],
    )
    def test_malformed_welcome_is_4001(self, change: dict[str, object]) -> None:
        conn = Connection(
            Config(is_client=True, channels=[ChannelSpec("a"), ChannelSpec("b")]), mode="message"
        )
        conn.initiate(0)
        body = {"version": [0, 1, 0], "channels": [], **change}
        conn.receive_message(ctl(ControlType.WELCOME, body), 0)
        assert conn.close_code == 4001, conn.close_reason

    def test_welcome_infinite_ping_refused(self) -> None:
        conn = Connection(Config(is_client=True), mode="message")
        conn.initiate(0)
        payload = b'{"version":[0,1,0],"pingInterval":1e999}'
        conn.receive_message(encode_frame(0, ControlType.WELCOME, payload), 0)
        assert conn.close_code == 4001

    def test_welcome_defaults(self) -> None:
        conn = Connection(Config(is_client=True, ping_timeout=4), mode="message")
        conn.initiate(0)
        conn.receive_message(ctl(ControlType.WELCOME, {"version": [0, 1, 0], "pingTimeout": 0}), 0)
        assert conn.state is State.OPEN and conn.max_message_size == 65535
        assert conn.ping_interval == 30 and conn.ping_timeout == 4

    def test_hello_bigger_than_a_small_server_limit_is_accepted(self) -> None:
        """Before negotiation the peer cannot know our limit: 65535 applies."""
        pair = Pair(
            Config(is_client=True, channels=[ChannelSpec(f"channel-{i}") for i in range(20)]),
            Config(is_client=False, max_message_size=64),
        )
        assert len(pair.server.channels) == 20 and pair.client.max_message_size == 64

    def test_stream_mode_pair(self) -> None:
        pair = Pair(Config(is_client=True, channels=[ChannelSpec("a")]), mode="stream")
        pair.client.send_message(1, 1, b"hi")
        assert pair.to_server() == [MessageReceived(1, 1, b"hi")]
        assert pair.server._peer_sent_magic and pair.client._peer_sent_magic

    def test_stream_client_accepts_welcome_without_magic(self) -> None:
        client = Connection(Config(is_client=True), mode="stream")
        client.initiate(0)
        assert client.data_to_send().startswith(MAGIC)
        events = client.receive_data(ctl(ControlType.WELCOME, {"version": [0, 1, 0]}), 0)
        assert isinstance(events[0], HandshakeCompleted)
        assert client.data_to_send() == b""

    def test_empty_reads_are_harmless(self) -> None:
        conn = Connection(Config(is_client=False), mode="stream")
        conn.initiate(0)
        assert conn.receive_data(b"", 0) == []
        assert conn.receive_data(b"OM", 0) == []
        assert conn.receive_data(b"", 0) == []
        assert conn.receive_data(b"UX", 0) == []
        assert conn.receive_data(b"", 0) == []
        events = conn.receive_data(hello(), 0)
        assert isinstance(events[0], HandshakeCompleted)
        assert conn.data_to_send().startswith(MAGIC)

    def test_magic_prefix_that_diverges(self) -> None:
        conn = Connection(Config(is_client=False), mode="stream")
        conn.initiate(0)
        assert conn.receive_data(b"OM", 0) == []
        (event,) = conn.receive_data(b"\x00X", 0)
        assert isinstance(event, ConnectionTerminated) and event.code == 1002
        assert conn.data_to_send() == b""


# -------------------------------------------------------- local misuse


class TestLocalMisuse:
    def test_before_handshake(self) -> None:
        conn = Connection(Config(is_client=True))
        with pytest.raises(LocalProtocolError):
            conn.send_message(1, 1, b"")
        with pytest.raises(LocalProtocolError):
            conn.send_error(1000)
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"x", 0)
        with pytest.raises(LocalProtocolError):
            conn.receive_message(b"x", 0)
        conn.initiate(0)
        with pytest.raises(LocalProtocolError):
            conn.initiate(0)
        with pytest.raises(LocalProtocolError):
            conn.open_channel("a")
        conn.send_error(4004, "allowed during the handshake", 3)

    def test_send_checks(self) -> None:
        conn = server([chan("a")])
        with pytest.raises(LocalProtocolError):
            conn.send_message(0, 1, b"")
        with pytest.raises(LocalProtocolError) as info:
            conn.send_message(9, 1, b"")
        assert info.value.code == 4003
        with pytest.raises(LocalProtocolError):
            conn.send_message(1, 256, b"")
        with pytest.raises(LocalProtocolError):
            conn.send_message(1, -1, b"")

    def test_channel_checks(self) -> None:
        conn = server([chan("a")])
        with pytest.raises(LocalProtocolError):
            conn.open_channel("")
        with pytest.raises(LocalProtocolError):
            conn.open_channel("a")
        with pytest.raises(LocalProtocolError):
            conn.close_channel(0)
        with pytest.raises(LocalProtocolError) as info:
            conn.close_channel(9)
        assert info.value.code == 4003
        assert conn.messages_to_send() == []

    def test_bad_mode(self) -> None:
        with pytest.raises(ValueError):
            Connection(Config(is_client=True), mode="datagram")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_message_size": -1},
            {"max_message_size": 10},
            {"max_reassembly": 0},
            {"max_reassembly_total": 0},
            {"max_control_message": 0},
            {"ping_interval": -1},
            {"ping_timeout": 0},
            {"hello_timeout": 0},
            {"close_timeout": -1},
            {"ping_interval": float("inf")},
            {"channels": [ChannelSpec("a"), ChannelSpec("a")]},
        ],
    )
    def test_config_validation(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            Config(is_client=True, **kwargs)  # type: ignore[arg-type]

    def test_pair_validates_roles(self) -> None:
        with pytest.raises(ValueError):
            Pair(Config(is_client=False), Config(is_client=False))

    def test_pair_reports_failed_handshake(self) -> None:
        with pytest.raises(RuntimeError, match="handshake failed"):
            Pair(Config(is_client=True), Config(is_client=False, token="x"))


# ------------------------------------------------------ odd corners


class TestCorners:
    def test_welcome_ignores_odd_and_unrequested_entries(self) -> None:
        conn = Connection(Config(is_client=True, channels=[ChannelSpec("a")]), mode="message")
        conn.initiate(0)
        body = {
            "version": [0, 1, 0],
            "channels": ["a", 5, {"name": "zzz", "id": 9}, {"name": "a", "id": 3}],
        }
        events = conn.receive_message(ctl(ControlType.WELCOME, body), 0)
        assert [c.id for c in conn.channels.values()] == [3] and len(events) == 2

    def test_client_refuses_server_open_on_an_id_in_use(self) -> None:
        pair = reliable_pair()
        body = {"requestId": 1, "id": 1, **chan("dup")}
        pair.client.receive_message(ctl(ControlType.OPEN_CHANNEL, body), 0)
        assert control_sent(pair.client) == [
            ("CHANNEL_REJECT", {"requestId": 1, "code": 1002, "reason": "id 1 is in use"})
        ]

    def test_ack_with_an_invalid_id_is_fatal(self) -> None:
        pair = reliable_pair()
        pair.client.open_channel("x")
        pair.client.messages_to_send()
        pair.client.receive_message(ctl(ControlType.CHANNEL_ACK, {"requestId": 1, "id": 1}), 0)
        assert pair.client.close_code == 1002

    def test_close_channel_without_id(self) -> None:
        conn = server()
        conn.receive_message(ctl(ControlType.CLOSE_CHANNEL, {"reason": "?"}), 0)
        assert control_sent(conn) == [
            ("ERROR", {"code": 4001, "reason": "CLOSE_CHANNEL without an id"})
        ]

    def test_check_token_directly(self) -> None:
        assert Config(is_client=False).check_token(None, False)
        token = Config(is_client=False, token="t")
        assert not token.check_token({"token": 5}, True)
        assert token.check_token({"token": "t"}, False)
        assert not token.check_token(None, False) and token.check_token(None, True)

    def test_message_too_large_for_one_frame(self) -> None:
        import mmap

        pair = Pair(
            Config(is_client=True, channels=[ChannelSpec("a")], max_message_size=0),
            Config(is_client=False, max_message_size=0),
        )
        try:
            huge = mmap.mmap(-1, 0x1_0000_0001)  # never touched: no memory used
        except (OSError, OverflowError, ValueError):
            pytest.skip("no address space for a 4 GiB mapping")
        with pytest.raises(LocalProtocolError) as info:
            pair.client.send_message(1, 1, huge)
        assert info.value.code == 4005
        assert pair.client.messages_to_send() == []
        # the traceback holds a view of the mapping: let it go with the mapping


class TestFrameCodecCorners:
    def test_encode_header_refuses_over_4gib(self) -> None:
        from openmux import encode_header

        with pytest.raises(ValueError):
            encode_header(1, 1, 0x1_0000_0000)

    def test_decode_accepts_any_buffer(self) -> None:
        import array

        from openmux import FrameReader
        from openmux.frame import decode_message

        frame = encode_frame(1, 2, b"abcd")
        assert decode_message(bytearray(frame)) == (1, 2, 0, b"abcd")
        wide = array.array("H", frame)  # 2-byte items: sizes must count bytes
        assert len(memoryview(wide)) == 5
        assert decode_message(memoryview(wide)) == (1, 2, 0, b"abcd")
        reader = FrameReader()
        buffer = bytearray(frame)
        (got,) = reader.feed(buffer)
        buffer[6:] = b"XXXX"  # the caller reuses its buffer: the payload must not change
        assert got == (1, 2, 0, b"abcd")


class TestPairHelper:
    def test_eof_reaches_the_other_side(self) -> None:
        pair = reliable_pair()
        pair.client.close(1000, "", 1.0)
        pair.client.messages_to_send()  # the CLOSE is lost
        assert not pair.terminated
        client_events, server_events = pair.advance(2.0)
        assert client_events == [ConnectionTerminated(1000, "", by_peer=False)]
        assert server_events == [ConnectionTerminated(1001, "transport closed", by_peer=True)]
        assert pair.terminated

    def test_runaway_guards(self) -> None:
        pair = reliable_pair()
        with pytest.raises(RuntimeError):
            pair.pump(max_rounds=0)
        pair.client.get_timer = lambda: 0.0  # type: ignore[method-assign]
        pair.client.handle_timer = lambda now: []  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            pair.advance(1.0)

    def test_ack_and_reject_without_request_id(self) -> None:
        conn = server()
        conn.receive_message(ctl(ControlType.CHANNEL_ACK, {"id": 1}), 0)
        conn.receive_message(ctl(ControlType.CHANNEL_REJECT, {"code": 1}), 0)
        assert [body["code"] for _, body in control_sent(conn)] == [4001, 4001]
        assert conn.state is State.OPEN


@pytest.mark.parametrize("split", [False, True])
def test_frames_after_hello_in_the_same_read_obey_the_new_limit(split: bool) -> None:
    """The negotiated limit applies from the frame after HELLO, however the
    bytes were cut (the reader had parsed them with the pre-handshake one)."""
    first = hello([chan("a")], maxMessageSize=100)
    second = encode_frame(1, 1, b"x" * 200)
    conn = Connection(Config(is_client=False), mode="stream")
    conn.initiate(0)
    if split:
        conn.receive_data(first, 0)
        conn.receive_data(second, 0)
    else:
        conn.receive_data(first + second, 0)
    assert conn.close_code == 4005
    frames = conn.data_to_send()
    assert b'"code":4005' in frames


@pytest.mark.parametrize("drain", ["data_to_send", "messages_to_send"])
def test_large_message_on_a_stream_either_drain(drain: str) -> None:
    pair = Pair(Config(is_client=True, channels=[ChannelSpec("a")]), mode="stream")
    big = bytes(range(256)) * 40
    pair.client.send_message(1, 4, big)
    pair.client.send_message(1, 5, b"after")
    if drain == "data_to_send":
        wire = pair.client.data_to_send()
    else:
        wire = b"".join(pair.client.messages_to_send())
    assert pair.server.receive_data(wire, 0) == [
        MessageReceived(1, 4, big),
        MessageReceived(1, 5, b"after"),
    ]
