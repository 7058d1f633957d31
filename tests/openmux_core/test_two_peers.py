"""Two connected state machines driven by random opens, closes, sends and pings,
with deliveries interleaved so that control messages cross on the wire.

Whatever the interleaving, the peers must agree on which channels are open,
every message must arrive exactly once and in order on the channel instance
it was sent on (a prefix while in flight, all of it once the link is quiet),
and two correct peers must never hit a protocol error.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from openmux import (
    ChannelClosed,
    ChannelOpened,
    ChannelRejected,
    ChannelSpec,
    Config,
    ConnectionClosedError,
    ConnectionTerminated,
    ErrorReceived,
    Event,
    HandshakeCompleted,
    LocalProtocolError,
    MessageReceived,
    PongReceived,
    State,
)
from openmux.testing import Pair

NAMES = ["n1", "n2", "n3", "n4", "n5"]
SIDES = ["client", "server"]
Key = tuple[str, int, int]  # (sending side, channel id, instance number of that id)


class TwoPeers(RuleBasedStateMachine):
    mode = "message"

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(
            Config(
                is_client=True,
                channels=[ChannelSpec("a"), ChannelSpec("u", reliable=False, ordered=False)],
            ),
            Config(is_client=False, max_message_size=64),
            mode=self.mode,  # type: ignore[arg-type]
        )
        self.conns = {"client": self.pair.client, "server": self.pair.server}
        self.wire: dict[str, Any] = {  # what each side sent that the other has not read
            "client": bytearray() if self.mode == "stream" else [],
            "server": bytearray() if self.mode == "stream" else [],
        }
        self.instances: dict[str, dict[int, int]] = {"client": {}, "server": {}}
        self.sent: dict[Key, list[bytes]] = {}
        self.received: dict[Key, list[bytes]] = {}
        self.closing = False
        self.counter = 0
        for side, events in (
            ("client", self.pair.client_events),
            ("server", self.pair.server_events),
        ):
            self.observe(side, events)

    def other(self, side: str) -> str:
        return "server" if side == "client" else "client"

    def observe(self, side: str, events: list[Event]) -> None:
        peer = self.other(side)
        for event in events:
            if isinstance(event, ChannelOpened):
                cid = event.channel.id
                self.instances[side][cid] = self.instances[side].get(cid, 0) + 1
            elif isinstance(event, MessageReceived):
                key = (peer, event.channel_id, self.instances[side][event.channel_id])
                self.received.setdefault(key, []).append(event.data)
            elif isinstance(event, ErrorReceived):
                # Only crossing CLOSE_CHANNELs make a correct peer complain.
                assert event.code == 4003, event
            elif isinstance(event, ConnectionTerminated):
                assert self.closing, f"{side} terminated unexpectedly: {event}"
            else:
                assert isinstance(
                    event, ChannelRejected | ChannelClosed | PongReceived | HandshakeCompleted
                ), event
                if isinstance(event, ChannelRejected):
                    assert event.code == 1002  # crossing opens of one name

    def collect(self) -> None:
        for side, conn in self.conns.items():
            if self.mode == "stream":
                self.wire[side] += conn.data_to_send()
            else:
                self.wire[side].extend(conn.messages_to_send())

    def deliver_from(self, side: str, amount: int) -> None:
        self.collect()
        sink = self.other(side)
        conn = self.conns[sink]
        queue = self.wire[side]
        if self.mode == "stream":
            chunk = bytes(queue[:amount])
            del queue[:amount]
            events = conn.receive_data(chunk, 0.0) if chunk else []
        else:
            events = []
            for message in queue[:amount]:
                events.extend(conn.receive_message(message, 0.0))
            del queue[:amount]
        self.observe(sink, events)

    def quiet(self) -> None:
        for _ in range(1000):
            self.collect()
            if not self.wire["client"] and not self.wire["server"]:
                return
            for side in SIDES:
                self.deliver_from(side, 1 << 30)
        raise AssertionError("the peers never go quiet")

    # ------------------------------------------------------------ rules

    @rule(
        side=st.sampled_from(SIDES),
        name=st.sampled_from(NAMES),
        reliable=st.booleans(),
        ordered=st.booleans(),
    )
    def open_channel(self, side: str, name: str, reliable: bool, ordered: bool) -> None:
        conn = self.conns[side]
        try:
            conn.open_channel(name, reliable=reliable, ordered=ordered)
        except ConnectionClosedError:
            assert self.closing
        except LocalProtocolError:
            assert name in conn._names or name in conn._pending_names

    @rule(side=st.sampled_from(SIDES), pick=st.integers(0, 10))
    def close_channel(self, side: str, pick: int) -> None:
        conn = self.conns[side]
        if not conn.channels:
            return
        ids = sorted(conn.channels)
        try:
            conn.close_channel(ids[pick % len(ids)])
        except ConnectionClosedError:
            assert self.closing

    @rule(
        side=st.sampled_from(SIDES),
        pick=st.integers(0, 10),
        size=st.sampled_from([0, 1, 63, 64, 65, 128, 192]) | st.integers(0, 300),
        type_=st.integers(0, 255),
    )
    def send(self, side: str, pick: int, size: int, type_: int) -> None:
        conn = self.conns[side]
        if not conn.channels:
            return
        ids = sorted(conn.channels)
        cid = ids[pick % len(ids)]
        self.counter += 1
        payload = (b"%d:" % self.counter + bytes(size))[: max(size, 1)]
        try:
            conn.send_message(cid, type_, payload)
        except ConnectionClosedError:
            assert self.closing
            return
        except LocalProtocolError as exc:
            assert exc.code == 4005 and not conn.channels[cid].fragmentable
            assert len(payload) > conn.max_message_size
            return
        key = (side, cid, self.instances[side][cid])
        self.sent.setdefault(key, []).append(payload)

    @rule(side=st.sampled_from(SIDES))
    def ping(self, side: str) -> None:
        try:
            self.conns[side].ping(0.0)
        except ConnectionClosedError:
            assert self.closing

    @rule(side=st.sampled_from(SIDES), amount=st.integers(1, 300))
    def deliver(self, side: str, amount: int) -> None:
        self.deliver_from(side, amount)

    @rule()
    def settle(self) -> None:
        self.quiet()
        self.check_agreement()

    @precondition(lambda self: not self.closing and self.counter > 10)
    @rule(side=st.sampled_from(SIDES))
    def close_connection(self, side: str) -> None:
        self.closing = True
        self.conns[side].close(1000, "end", 0.0)

    def teardown(self) -> None:
        self.quiet()
        if self.closing:
            for conn in self.conns.values():
                assert conn.state is State.CLOSED
        else:
            self.check_agreement()

    # -------------------------------------------------------- invariants

    @invariant()
    def delivered_in_order_exactly_once(self) -> None:
        for key, got in self.received.items():
            assert got == self.sent.get(key, [])[: len(got)], key

    @invariant()
    def names_and_ids_consistent(self) -> None:
        for conn in self.conns.values():
            assert {c.name: c.id for c in conn.channels.values()} == conn._names

    def check_agreement(self) -> None:
        client, server = self.pair.client, self.pair.server
        if self.closing:
            return
        assert client.state is State.OPEN and server.state is State.OPEN
        assert client.channels == server.channels
        for conn in (client, server):
            assert not conn._outgoing and not conn._incoming
            assert not conn._pending_names and not conn._reserved_ids
            assert not conn._reassembly
        for cid in client.channels:
            for side in SIDES:
                key = (side, cid, self.instances[side][cid])
                assert self.received.get(key, []) == self.sent.get(key, []), key
            assert self.instances["client"][cid] == self.instances["server"][cid]


class TwoPeersStream(TwoPeers):
    mode = "stream"


PEER_SETTINGS = settings(
    deadline=None,
    max_examples=60,
    stateful_step_count=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestTwoPeersMessage = TwoPeers.TestCase
TestTwoPeersMessage.settings = PEER_SETTINGS
TestTwoPeersStream = TwoPeersStream.TestCase
TestTwoPeersStream.settings = PEER_SETTINGS
