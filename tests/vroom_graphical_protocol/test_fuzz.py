"""Hypothesis: no bytes a peer sends make a decoder raise anything but our own errors."""

from __future__ import annotations

import json
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vroom_graphical import (
    ACTIONS,
    DecodeError,
    GraphicalError,
    decode_body,
    decode_control,
    decode_input,
    encode_input,
    scan_cbor,
)
from vroom_graphical.encoding import MAX_DEPTH
from vroom_graphical.inputs import InputType

from .pair import Pair

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "version",
    "control_encoding",
    "capabilities",
    "viewport",
    "mode",
    "client",
    "width",
    "height",
    "scale",
    "pixelRatio",
    "direction",
    "text",
    "mimeType",
    "url",
    "newTab",
    "id",
    "action",
    "selector",
    "values",
    "amount",
    "state",
    "expression",
    "type",
    "x",
    "y",
    "visible",
    "title",
    "loading",
    "browser",
    "ref",
    "timestamp",
    "data",
    "code",
    "role",
    "agent",
]
plausible_values = (
    json_values
    | st.sampled_from(
        [
            "view",
            "interact",
            "voice",
            "cbor",
            "json",
            "0.1.0",
            "set",
            "get",
            "push",
            "user",
            "idle",
            "info",
            "error",
            *ACTIONS,
        ]
    )
    | st.fixed_dictionaries({"width": st.integers(-2, 70000), "height": st.integers(-2, 70000)})
)
bodies = st.dictionaries(st.sampled_from(KEYS), plausible_values, max_size=8)
control_types = st.sampled_from([*range(0x80, 0x87), *range(0x90, 0x94)]) | st.integers(0, 255)


def _check_input(type_: int, data: bytes) -> None:
    try:
        message = decode_input(type_, data)
    except GraphicalError:
        return
    assert encode_input(message) == (type_, data)  # anything accepted re-encodes exactly


@FAST
@given(st.integers(0, 255), st.binary(max_size=600))
def test_decode_input_random_bytes(type_: int, data: bytes) -> None:
    _check_input(type_, data)


@FAST
@given(st.sampled_from(list(InputType)), st.binary(max_size=40))
def test_decode_input_known_types(type_: InputType, data: bytes) -> None:
    _check_input(type_, data)


@FAST
@given(control_types, st.binary(max_size=300), st.booleans(), st.sampled_from(["cbor", "json"]))
def test_decode_control_random_bytes(type_: int, data: bytes, from_client: bool, enc: Any) -> None:
    try:
        decode_control(type_, data, enc, from_client=from_client, limit=200)
    except GraphicalError:
        pass


@FAST
@given(control_types, bodies, st.booleans())
def test_decode_control_plausible_bodies(
    type_: int, body: dict[str, Any], from_client: bool
) -> None:
    for payload, enc in ((cbor2.dumps(body), "cbor"), (json.dumps(body).encode(), "json")):
        try:
            message = decode_control(type_, payload, enc, from_client=from_client)  # type: ignore[arg-type]
        except GraphicalError:
            continue
        # whatever we accept we can send back out, and it decodes to the same thing
        assert type(message).from_body(message.to_body()) == message


@FAST
@given(st.binary(max_size=200))
def test_scan_cbor_random_bytes(data: bytes) -> None:
    try:
        scan_cbor(data)
    except DecodeError:
        return
    # what the scan lets through, cbor2 decodes (or refuses as bad UTF-8)
    try:
        decode_body(data, "cbor", 1000)
    except DecodeError:
        pass


@FAST
@given(json_values)
def test_scan_cbor_accepts_our_data_model(value: Any) -> None:
    data = cbor2.dumps({"v": value})
    scan_cbor(data)
    assert decode_body(data, "cbor", len(data)) == {"v": value}


@FAST
@given(st.binary(max_size=200))
def test_decode_body_json_random_bytes(data: bytes) -> None:
    try:
        decode_body(data, "json", 1000)
    except DecodeError:
        pass


def test_scan_cbor_deep_but_legal() -> None:
    data = b"\xa1\x61k" * (MAX_DEPTH - 1) + b"\x80"
    scan_cbor(data)


frames = st.lists(
    st.tuples(
        st.sampled_from(["vroom.graphical.control", "pointer", "button"]),
        control_types | st.sampled_from(list(InputType)),
        st.binary(max_size=40) | bodies.map(cbor2.dumps),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_server_survives_any_client_frames(sequence: list[tuple[str, int, bytes]]) -> None:
    p = Pair(client={"mode": "interact"})
    for name, type_, data in sequence:
        channels = {c.name: c.id for c in p.cmux.channels.values()}
        if name in channels:
            p.cmux.send_message(channels[name], int(type_), data)
    p.pump()  # raising here would fail the test
    for cmd in p.server_events:
        if type(cmd).__name__ == "CommandReceived":
            p.server.reply(cmd)  # type: ignore[arg-type]
    p.pump()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_client_survives_any_server_frames(sequence: list[tuple[str, int, bytes]]) -> None:
    p = Pair(client={"mode": "interact"})
    for name, type_, data in sequence:
        channels = {c.name: c.id for c in p.smux.channels.values()}
        if name in channels:
            p.smux.send_message(channels[name], int(type_), data)
    p.pump()
