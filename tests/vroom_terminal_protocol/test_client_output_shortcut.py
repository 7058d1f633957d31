"""`TerminalClient.handle_event`'s shortcut for pty output gives exactly what
the general path (`Endpoint.handle_event`) gives: the same terminal events,
the same bytes sent back (WINDOW_ACKs, errors), the same session states, for
any mix of output, other pty messages, bad types, overruns and the end of
the session."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openmux import encode_frame
from vroom_terminal import TerminalClient
from vroom_terminal.endpoint import Endpoint

from .helpers import TermPair, offer
from .test_flow_pair import _ready


class General(TerminalClient):
    handle_event = Endpoint.handle_event  # type: ignore[assignment]


def _pair(general: bool) -> TermPair:
    pair = TermPair(client_kwargs={"offer": offer(window=4096), "ack_every": 1000})
    if general:
        pair.client.__class__ = General
    _ready(pair)
    return pair


actions = st.lists(
    st.one_of(
        st.tuples(st.just("output"), st.binary(max_size=3000)),
        st.tuples(st.just("raw"), st.integers(0, 6), st.binary(max_size=2000)),
        st.tuples(st.just("consume"), st.integers(0, 5000)),
        st.tuples(st.just("exit"), st.integers(0, 3)),
        st.tuples(st.just("close"), st.just(b"")),
    ),
    max_size=25,
)


def _run(general: bool, script: list[Any]) -> list[Any]:
    pair = _pair(general)
    client, server = pair.client, pair.server
    mux_c, mux_s = pair.pair.client, pair.pair.server
    pty = server.sessions[""].pty_id
    log: list[Any] = []
    for action in script:
        kind = action[0]
        try:
            if kind == "output":
                server.send_output("", action[1])
            elif kind == "raw":  # anything on the pty channel, past the credit too
                mux_s._queue(encode_frame(pty, action[1], action[2]))
            elif kind == "consume":
                sess = client.sessions[""]
                client.ack(min(action[1], sess.ack_window.received - sess.ack_window.consumed))
            elif kind == "exit":
                server.send_exit_status("", action[1])
            else:
                server.close_session("")
        except Exception as exc:  # a local refusal: the same on both sides
            log.append(("refused", type(exc).__name__))
        for frame in mux_s.messages_to_send():
            for event in mux_c.receive_message(frame, 0.0):
                log.extend(client.handle_event(event))
        sent = mux_c.messages_to_send()
        log.append(("sent", sent))
        for frame in sent:
            for event in mux_s.receive_message(frame, 0.0):
                server.handle_event(event)
        log.append(("state", client.state(""), mux_c.state))
    return log


@settings(max_examples=150, deadline=None)
@given(actions)
def test_output_shortcut_is_the_general_path(script: list[Any]) -> None:
    assert _run(False, script) == _run(True, script)


def test_the_shortcut_is_taken() -> None:
    pair = _pair(False)
    calls: list[object] = []
    original = Endpoint._on_pty_message

    def spy(self: Endpoint, *args: Any) -> None:
        calls.append(args)
        original(self, *args)

    Endpoint._on_pty_message = spy  # type: ignore[method-assign]
    try:
        pair.server.send_output("", b"hello")
        pair.pump()
    finally:
        Endpoint._on_pty_message = original  # type: ignore[method-assign]
    assert calls == []
    assert [e.data for e in pair.client_events if type(e).__name__ == "PtyOutput"] == [b"hello"]  # type: ignore[attr-defined]
