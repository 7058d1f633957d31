"""Runs the golden vectors of tests/vectors/openmux/ (format: docs/vectors.md)
through the real `openmux.Connection` and frame codec."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openmux import (
    MAGIC,
    ChannelSpec,
    Config,
    Connection,
    LocalProtocolError,
    decode_message,
)
from openmux.config import DEFER
from openmux.events import Event

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "openmux"
CONTROL_NAMES = {
    0x01: "HELLO",
    0x02: "WELCOME",
    0x03: "OPEN_CHANNEL",
    0x04: "CHANNEL_ACK",
    0x05: "CLOSE_CHANNEL",
    0x06: "CHANNEL_REJECT",
    0x10: "PING",
    0x11: "PONG",
    0x20: "CLOSE",
    0xF0: "ERROR",
}

Obj = dict[str, Any]


def load(kind: str) -> list[tuple[str, Obj]]:
    """(file:name, vector) for every vector of that kind ("frame", "magic", "session")."""
    found = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        for v in doc["vectors"]:
            if v.get("kind", "session") == kind:
                found.append((f"{path.stem}:{v['name']}", v))
    return found


# ----------------------------------------------------------------- matching


def matches(expected: Any, actual: Any) -> bool:
    """Subset match: every key of an expected object must match; lists match
    element by element and must have the same length."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, int | float) and abs(float(expected) - float(actual)) < 1e-9
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def split_output(data: bytes) -> list[bytes]:
    """A byte stream cut into the magic and whole frames (independent parser)."""
    items: list[bytes] = []
    pos = 0
    if data.startswith(MAGIC):
        items.append(MAGIC)
        pos = 4
    while pos < len(data):
        _ch, _typ, flags, _, length = struct.unpack_from(">BBBBH", data, pos)
        head = 6
        if flags & 1:
            (length,) = struct.unpack_from(">I", data, pos + 4)
            head = 8
        items.append(data[pos : pos + head + length])
        pos += head + length
    return items


def frame_view(item: bytes) -> Obj:
    if item == MAGIC:
        return {"magic": True, "hex": item.hex()}
    ch, typ, flags = item[0], item[1], item[2]
    payload = item[8:] if flags & 1 else item[6:]
    view: Obj = {
        "hex": item.hex(),
        "channel": ch,
        "type": CONTROL_NAMES.get(typ, typ) if ch == 0 else typ,
        "flags": flags,
        "payload_hex": payload.hex(),
    }
    if ch == 0 and not flags & 0x06:  # reassembled control messages included
        try:
            view["json"] = json.loads(payload)
        except ValueError:
            pass
    return view


def frame_matches(expected: Obj, view: Obj) -> bool:
    want = {k: v for k, v in expected.items() if k not in ("optional", "absent")}
    if not matches(want, view):
        return False
    body = view.get("json")
    return not any(isinstance(body, dict) and key in body for key in expected.get("absent", ()))


def reassemble_control(items: list[bytes]) -> list[bytes]:
    """Channel-0 fragments joined into one logical frame, so that a control
    message matches whether or not the negotiated size made it fragment."""
    joined: list[bytes] = []
    parts: list[bytes] = []
    for item in items:
        if item != MAGIC and item[0] == 0 and item[2] & 0x02:
            parts.append(item[8:] if item[2] & 1 else item[6:])
            if item[2] & 0x04:
                payload = b"".join(parts)
                parts = []
                joined.append(struct.pack(">BBBBI", 0, item[1], 0x01, 0, len(payload)) + payload)
            continue
        joined.append(item)
    assert not parts, "a control message was left unfinished"
    return joined


def check_sent(expected: list[Obj], items: list[bytes], where: str) -> None:
    views = [frame_view(i) for i in reassemble_control(items)]
    pos = 0
    for want in expected:
        if pos < len(views) and frame_matches(want, views[pos]):
            pos += 1
        elif not want.get("optional"):
            raise AssertionError(f"{where}: expected {want}, sent {views[pos:]}")
    if pos != len(views):
        raise AssertionError(f"{where}: unexpected frames {views[pos:]}")


def to_jsonish(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonish(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: to_jsonish(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonish(v) for v in value]
    return value


def event_view(event: Event) -> Obj:
    view: Obj = {"event": type(event).__name__}
    for f in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if isinstance(value, bytes):
            view[f"{f.name}_hex"] = value.hex()
        else:
            view[f.name] = to_jsonish(value)
    return view


# ------------------------------------------------------------------ running


def make_policy(policy: Any) -> Any:
    def verdict(value: Any) -> int | str | None:
        if value == "defer":
            return DEFER
        if value == "accept" or value is None:
            return None
        return int(value)

    if isinstance(policy, dict):
        return lambda spec: verdict(policy.get(spec.name))
    return lambda spec: verdict(policy)


def make_connection(vector: Obj) -> Connection:
    cfg = dict(vector.get("config", {}))
    transport_authenticated = cfg.pop("transport_authenticated", False)
    kwargs: Obj = {"is_client": vector["role"] == "client"}
    for key, value in cfg.items():
        if key == "channels":
            kwargs["channels"] = [
                ChannelSpec(
                    c["name"],
                    c["reliable"],
                    c["ordered"],
                    c.get("maxRetransmits"),
                    c.get("maxPacketLifeTime"),
                    c.get("metadata"),
                )
                for c in value
            ]
        elif key == "channel_policy":
            kwargs["channel_policy"] = make_policy(value)
        elif key == "version":
            kwargs["version"] = tuple(value)
        else:
            kwargs[key] = value
    conn = Connection(Config(**kwargs), mode=vector["mode"])
    conn.transport_authenticated = transport_authenticated
    return conn


def run_call(conn: Connection, step: Obj) -> list[Event]:
    method, args, at = step["method"], dict(step["args"]), step["at"]
    if method == "send_message":
        conn.send_message(args["channel_id"], args["type"], bytes.fromhex(args["data_hex"]))
    elif method == "open_channel":
        conn.open_channel(
            args["name"],
            reliable=args.get("reliable", True),
            ordered=args.get("ordered", True),
        )
    elif method == "close_channel":
        conn.close_channel(args["id"], args.get("reason", ""))
    elif method == "accept_channel":
        conn.accept_channel(args["request_id"])
    elif method == "reject_channel":
        conn.reject_channel(args["request_id"], args["code"], args.get("reason", ""))
    elif method == "ping":
        conn.ping(at)
    elif method == "close":
        conn.close(args["code"], args.get("reason", ""), at)
    else:
        raise ValueError(f"unknown method {method}")
    return []


def run_session(vector: Obj) -> None:
    conn = make_connection(vector)
    for index, step in enumerate(vector["steps"]):
        where = f"{vector['name']} step {index} ({step['op']})"
        expect = step["expect"]
        op, at = step["op"], step["at"]
        events: list[Event] = []
        raised: LocalProtocolError | None = None
        if op == "initiate":
            conn.initiate(at)
        elif op == "recv":
            data = bytes.fromhex(step["hex"])
            if vector["mode"] == "stream":
                events = conn.receive_data(data, at)
            else:
                events = conn.receive_message(data, at)
        elif op == "timer":
            due = conn.get_timer()
            if expect.get("sent") or expect.get("events"):
                assert due is not None and due <= at, f"{where}: timer due at {due}"
            events = conn.handle_timer(at)
        elif op == "eof":
            events = conn.connection_lost(at)
        elif op == "call":
            try:
                events = run_call(conn, step)
            except LocalProtocolError as exc:
                raised = exc
        else:
            raise ValueError(f"{where}: unknown op")
        if "raises" in expect:
            assert raised is not None, f"{where}: expected a local error {expect['raises']}"
            assert raised.code == expect["raises"], f"{where}: raised {raised.code}"
        elif raised is not None:
            raise AssertionError(f"{where}: unexpected {raised!r}")
        if vector["mode"] == "stream":
            items = split_output(conn.data_to_send())
        else:
            items = conn.messages_to_send()
        check_sent(expect.get("sent", []), items, where)
        if "events" in expect:
            views = [event_view(e) for e in events]
            assert len(views) == len(expect["events"]), f"{where}: events {views}"
            for want, got in zip(expect["events"], views, strict=True):
                assert matches(want, got), f"{where}: expected {want}, got {got}"
        if "state" in expect:
            assert conn.state.value == expect["state"], f"{where}: state {conn.state.value}"


def run_frame(vector: Obj) -> None:
    from openmux import FrameReader, encode_frame
    from openmux.errors import ProtocolError

    data = bytes.fromhex(vector["hex"])
    expect = vector["expect"]
    limit = vector.get("limit", 0)
    if "error" in expect:
        try:
            decode_message(data, limit)
        except ProtocolError as exc:
            assert exc.code == expect["error"], exc
        else:
            raise AssertionError(f"{vector['name']}: decoded without error")
        reader = FrameReader(limit)
        frames = reader.feed(data)
        if expect["stream"] == "error":
            assert reader.error is not None and reader.error.code == expect["error"]
            assert frames == []
        elif expect["stream"] == "wait":
            assert reader.error is None and frames == [] and reader.buffered == len(data)
        else:
            assert reader.error is None and len(frames) > 1 and reader.buffered == 0
        return
    payload = bytes.fromhex(expect["payload_hex"])
    want = (expect["channel"], expect["type"], expect["flags"], payload)
    assert decode_message(data) == want
    reader = FrameReader()
    assert reader.feed(data) == [want]
    bytewise = FrameReader()
    got = [f for i in range(len(data)) for f in bytewise.feed(data[i : i + 1])]
    assert got == [want]
    if expect["canonical"]:
        assert encode_frame(want[0], want[1], payload, want[2]) == data
