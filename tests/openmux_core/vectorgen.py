"""Builds the OpenMux golden vectors in tests/vectors/openmux/*.json.

Run `.venv/bin/python tests/openmux_core/vectorgen.py` after changing it;
test_vectors.py fails if the committed files differ from what this produces.
It uses only the stdlib (struct, json): the bytes are written from the spec,
not by the implementation under test. The format is described in
docs/vectors.md.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "vectors" / "openmux"

CTRL = {
    "HELLO": 0x01,
    "WELCOME": 0x02,
    "OPEN_CHANNEL": 0x03,
    "CHANNEL_ACK": 0x04,
    "CLOSE_CHANNEL": 0x05,
    "CHANNEL_REJECT": 0x06,
    "PING": 0x10,
    "PONG": 0x11,
    "CLOSE": 0x20,
    "SESSION_ID": 0x30,
    "RESUME_REQUEST": 0x31,
    "RESUME_RESPONSE": 0x32,
    "DETACH": 0x33,
    "SESSION_LIST_REQUEST": 0x34,
    "SESSION_LIST_RESPONSE": 0x35,
    "ATTACH_REQUEST": 0x36,
    "RESUME_ACK": 0x37,
    "ERROR": 0xF0,
}
CTRL_NAME = {v: k for k, v in CTRL.items()}
FLAG_NAMES = {0x01: "EXTENDED_LENGTH", 0x02: "FRAGMENT", 0x04: "FRAGMENT_END"}
MAGIC = b"OMUX"
F, FE = 0x02, 0x06  # FRAGMENT, FRAGMENT|FRAGMENT_END

Obj = dict[str, Any]

# ----------------------------------------------------------------- encoding


def frame(ch: int, typ: int, payload: bytes = b"", flags: int = 0, *, ext: bool = False) -> bytes:
    if ext or len(payload) > 0xFFFF:
        return struct.pack(">BBBBI", ch, typ, flags | 0x01, 0, len(payload)) + payload
    return struct.pack(">BBBBH", ch, typ, flags, 0, len(payload)) + payload


def js(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def ctl(name: str, body: Any, flags: int = 0) -> bytes:
    return frame(0, CTRL[name], js(body), flags)


def ping(ms: int) -> bytes:
    return frame(0, CTRL["PING"], struct.pack(">I", ms))


def pong(echo: int, ms: int) -> bytes:
    return frame(0, CTRL["PONG"], struct.pack(">II", echo, ms))


def describe(data: bytes) -> list[Obj]:
    """The decoded meaning of `data`, frame by frame, for human readers."""
    out: list[Obj] = []
    pos = 0
    if data.startswith(MAGIC):
        out.append({"magic": "OMUX"})
        pos = 4
    while pos < len(data):
        if len(data) - pos < 6:
            out.append({"partial": data[pos:].hex()})
            break
        ch, typ, flags, reserved, length = struct.unpack_from(">BBBBH", data, pos)
        head = 6
        if flags & 1 and len(data) - pos >= 8:
            (length,) = struct.unpack_from(">I", data, pos + 4)
            head = 8
        item: Obj = {
            "channel": ch,
            "type": CTRL_NAME.get(typ, typ) if ch == 0 else typ,
            "flags": [n for b, n in FLAG_NAMES.items() if flags & b]
            + ([f"reserved bits {flags & 0xF8:#04x}"] if flags & 0xF8 else []),
            "length": length,
        }
        if reserved:
            item["reserved"] = reserved
        payload = data[pos + head : pos + head + length]
        if len(payload) < length:
            item["partial_payload"] = f"{len(payload)} of {length} bytes"
        if ch == 0 and typ == CTRL["PING"] and length == 4 and len(payload) == 4:
            item["timestamp"] = struct.unpack(">I", payload)[0]
        elif ch == 0 and typ == CTRL["PONG"] and length == 8 and len(payload) == 8:
            item["echo"], item["timestamp"] = struct.unpack(">II", payload)
        elif ch == 0 and not flags & 0x06:
            try:
                item["json"] = json.loads(payload)
            except ValueError:
                item["payload_hex"] = payload.hex()
        else:
            item["payload_hex"] = payload.hex()
        out.append(item)
        pos += head + length
    return out


# ------------------------------------------------------------ expectations


def out(name: str, body: Obj | None = None, *, absent: list[str] | None = None) -> Obj:
    """An expected control frame: channel 0, this type, JSON containing `body`."""
    m: Obj = {"channel": 0, "type": name, "json": body or {}}
    if absent:
        m["absent"] = absent
    return m


def exact(data: bytes) -> Obj:
    return {"hex": data.hex()}


def optional(matcher: Obj) -> Obj:
    return {**matcher, "optional": True}


OUT_MAGIC: Obj = {"magic": True}


def ev(name: str, /, **fields: Any) -> Obj:
    return {"event": name, **fields}


def terminated(code: int, reason: str | None = None, by_peer: bool | None = None) -> Obj:
    e = ev("ConnectionTerminated", code=code)
    if reason is not None:
        e["reason"] = reason
    if by_peer is not None:
        e["by_peer"] = by_peer
    return e


def close_out(code: int, reason: str | None = None) -> Obj:
    body: Obj = {"code": code}
    if reason is not None:
        body["reason"] = reason
    return out("CLOSE", body)


def error_out(code: int, channel: int | None = None) -> Obj:
    body: Obj = {"code": code}
    if channel is not None:
        body["channel"] = channel
    return out("ERROR", body)


# ------------------------------------------------------------------- steps


def _expect(sent: Any, events: Any, **extra: Any) -> Obj:
    e: Obj = {}
    if sent is not None:
        e["sent"] = list(sent)
    if events is not None:
        e["events"] = list(events)
    e.update({k: v for k, v in extra.items() if v is not None})
    return e


def initiate(sent: Any = (), events: Any = (), **extra: Any) -> Obj:
    return {"op": "initiate", "at": 0.0, "expect": _expect(sent, events, **extra)}


def recv(
    data: bytes, at: float = 0.0, sent: Any = (), events: Any = (), note: str = "", **extra: Any
) -> Obj:
    step: Obj = {"op": "recv", "at": at, "hex": data.hex(), "meaning": describe(data)}
    if note:
        step["note"] = note
    step["expect"] = _expect(sent, events, **extra)
    return step


def timer(at: float, sent: Any = (), events: Any = (), **extra: Any) -> Obj:
    return {"op": "timer", "at": at, "expect": _expect(sent, events, **extra)}


def call(
    method: str, args: Obj, at: float = 0.0, sent: Any = (), events: Any = (), **extra: Any
) -> Obj:
    return {
        "op": "call",
        "at": at,
        "method": method,
        "args": args,
        "expect": _expect(sent, events, **extra),
    }


def vector(
    name: str,
    description: str,
    steps: list[Obj],
    *,
    role: str = "server",
    mode: str = "message",
    config: Obj | None = None,
    spec: str = "",
    source: str = "house",
) -> Obj:
    v: Obj = {"name": name, "description": description, "source": source, "spec": spec}
    v.update({"role": role, "mode": mode, "config": config or {}, "steps": steps})
    return v


# --------------------------------------------------------------- handshakes

HELLO_MIN_BODY = {"version": [0, 1, 0], "channels": []}
HELLO_MIN = ctl("HELLO", HELLO_MIN_BODY)
assert HELLO_MIN[:6] == bytes.fromhex("000100000021"), HELLO_MIN[:6].hex()

BUTTON = {"name": "button", "reliable": True, "ordered": True}
POINTER = {"name": "pointer", "reliable": False, "ordered": False, "maxRetransmits": 0}
LOG = {"name": "log", "reliable": True, "ordered": True}


def hello(channels: list[Any] | None = None, **extra: Any) -> bytes:
    body: Obj = {"version": [0, 1, 0], "channels": channels or []}
    body.update(extra)
    return ctl("HELLO", body)


def opened(cid: int, name: str, *, local: bool = False, rid: int | None = None) -> Obj:
    e = ev("ChannelOpened", channel={"id": cid, "name": name}, locally_initiated=local)
    if rid is not None:
        e["request_id"] = rid
    return e


def server_open(
    channels: list[Obj] | None = None, *, at: float = 0.0, magic: bool = False, **extra: Any
) -> list[Obj]:
    """initiate + a HELLO asking for `channels`, all granted with ids 1, 2, ..."""
    channels = channels or []
    grants = [{"name": c["name"], "id": i + 1} for i, c in enumerate(channels)]
    data = (MAGIC if magic else b"") + hello(channels, **extra)
    return [
        initiate(),
        recv(
            data,
            at=at,
            sent=([OUT_MAGIC] if magic else []) + [out("WELCOME", {"channels": grants})],
            events=[ev("HandshakeCompleted", version=[0, 1, 0])]
            + [opened(g["id"], g["name"]) for g in grants],
            state="open",
        ),
    ]


APP = [BUTTON, POINTER, LOG]  # ids 1, 2, 3


def client_open(
    channels: list[Obj] | None = None, grants: list[Obj] | None = None, **welcome: Any
) -> list[Obj]:
    channels = channels or []
    grants = (
        grants
        if grants is not None
        else [{"name": c["name"], "id": i + 1} for i, c in enumerate(channels)]
    )
    body: Obj = {"version": [0, 1, 0], "extensions": [], "maxMessageSize": 65535}
    body.update({"pingInterval": 30, "pingTimeout": 10, "channels": grants})
    body.update(welcome)
    return [
        initiate(sent=[out("HELLO", {"version": [0, 1, 0], "channels": channels})]),
        recv(
            ctl("WELCOME", body),
            sent=[],
            events=[ev("HandshakeCompleted", version=body["version"])]
            + [opened(g["id"], g["name"], local=True) for g in grants],
            state="open",
        ),
    ]


# ------------------------------------------------------------ frame codec


def frame_vectors() -> list[Obj]:
    def ok(name: str, data: bytes, desc: str, *, canonical: bool = True, src: str = "house") -> Obj:
        ch, typ, flags = data[0], data[1], data[2]
        head = 8 if flags & 1 else 6
        return {
            "name": name,
            "description": desc,
            "source": src,
            "kind": "frame",
            "hex": data.hex(),
            "meaning": describe(data),
            "expect": {
                "channel": ch,
                "type": typ,
                "flags": flags & ~1,
                "payload_hex": data[head:].hex(),
                "canonical": canonical,
            },
        }

    def bad(
        name: str, data: bytes, desc: str, code: int = 1002, limit: int = 0, stream: str = "error"
    ) -> Obj:
        """`stream`: what a byte-stream parser makes of the same bytes: the same
        "error", "wait" for more bytes, or "frames" (several valid frames)."""
        v: Obj = {
            "name": name,
            "description": desc,
            "source": "house",
            "kind": "frame",
            "hex": data.hex(),
            "meaning": describe(data),
            "expect": {"error": code, "stream": stream},
        }
        if limit:
            v["limit"] = limit
        return v

    return [
        {
            "name": "magic",
            "description": "The OMUX magic a client sends first on byte streams",
            "source": "upstream",
            "kind": "magic",
            "hex": MAGIC.hex(),
            "meaning": [{"magic": "OMUX"}],
            "expect": {},
        },
        ok("upstream-ping-ts-1000", ping(1000), "PING, timestamp 1000 ms", src="upstream"),
        ok(
            "upstream-pong-echo-1000-recv-500",
            pong(1000, 500),
            "PONG echoing 1000 with the receiver's clock at 500 ms",
            src="upstream",
        ),
        ok(
            "upstream-mouse-move",
            frame(1, 0x01, bytes.fromhex("0200012c")),
            "VROOM pointer MOUSE_MOVE x=512 y=300 on channel 1: exactly 10 bytes",
            src="upstream",
        ),
        ok(
            "upstream-hello-minimal-corrected",
            HELLO_MIN,
            "Minimal HELLO; upstream printed length 0x22, the 33-byte JSON needs 0x21",
            src="upstream",
        ),
        ok("empty-payload", frame(3, 0x7F), "A frame may carry no payload"),
        ok(
            "extended-short",
            frame(1, 0x07, b"hello", ext=True),
            "EXTENDED_LENGTH with a small length is legal (not what an encoder picks)",
            canonical=False,
        ),
        ok("fragment-first", frame(1, 0x02, b"abc", F), "FRAGMENT: more fragments follow"),
        ok("fragment-last", frame(1, 0x02, b"gh", FE), "FRAGMENT|FRAGMENT_END: last fragment"),
        bad(
            "upstream-hello-wrong-length",
            bytes.fromhex("000100000022") + js(HELLO_MIN_BODY),
            "Upstream's HELLO vector as printed: one message must hold exactly one frame",
            stream="wait",
        ),
        bad("reserved-byte", bytes.fromhex("001000010004000003e8"), "reserved byte 0x01"),
        bad("reserved-flag-0x08", bytes.fromhex("011008000000"), "flag bit 3 set"),
        bad("reserved-flag-0x80", bytes.fromhex("011080000000"), "flag bit 7 set"),
        bad("channel-255", bytes.fromhex("ff0100000000"), "channel 255 is reserved"),
        bad("fragment-end-alone", bytes.fromhex("010104000000"), "FRAGMENT_END without FRAGMENT"),
        bad(
            "short-header", bytes.fromhex("0010000000"), "5 bytes: not even a header", stream="wait"
        ),
        bad(
            "short-extended-header",
            bytes.fromhex("01010100000000"),
            "7-byte EXTENDED header",
            stream="wait",
        ),
        bad(
            "two-frames", ping(1) + ping(2), "Two frames in one transport message", stream="frames"
        ),
        bad(
            "truncated-payload",
            bytes.fromhex("00100000000400"),
            "declares 4, carries 1",
            stream="wait",
        ),
        bad(
            "over-limit",
            frame(1, 0x01, b"\0" * 1025),
            "declared length 1025 over a negotiated maxMessageSize of 1024",
            code=4005,
            limit=1024,
        ),
        bad(
            "hostile-4gib",
            bytes.fromhex("01010100ffffffff"),
            "EXTENDED header declaring 4 GiB - 1: refused from the header alone",
            code=4005,
            limit=1024,
        ),
    ]


# -------------------------------------------------------------- handshake


def handshake_vectors() -> list[Obj]:
    full_hello = {
        "version": [0, 1, 0],
        "application": "vroom/0.1",
        "extensions": ["fragmentation"],
        "maxMessageSize": 65535,
        "pingInterval": 30,
        "pingTimeout": 10,
        "channels": [POINTER, BUTTON],
        "auth": {"type": "token", "token": "s3cret"},
    }
    token = {"token": "s3cret"}
    v = [
        vector(
            "hello-minimal",
            "Upstream's minimal HELLO (corrected length) opens a connection without channels",
            server_open(),
            spec="§2 HELLO, §4 Later",
            source="upstream",
        ),
        vector(
            "hello-upstream-example",
            "The spec's HELLO example with a token: both channels granted, in order",
            [
                initiate(),
                recv(
                    ctl("HELLO", full_hello),
                    sent=[
                        out(
                            "WELCOME",
                            {
                                "version": [0, 1, 0],
                                "extensions": ["fragmentation"],
                                "maxMessageSize": 65535,
                                "pingInterval": 30,
                                "pingTimeout": 10,
                                "channels": [
                                    {"name": "pointer", "id": 1},
                                    {"name": "button", "id": 2},
                                ],
                            },
                        )
                    ],
                    events=[
                        ev("HandshakeCompleted", application="vroom/0.1"),
                        opened(1, "pointer"),
                        opened(2, "button"),
                    ],
                    state="open",
                ),
            ],
            config=token,
            spec="§2 HELLO/WELCOME",
        ),
        vector(
            "client-hello-and-welcome",
            "A client sends HELLO at once; WELCOME opens the granted channels",
            client_open([BUTTON, POINTER]),
            role="client",
            config={"channels": [BUTTON, POINTER]},
            spec="§2",
        ),
        vector(
            "client-welcome-grants-subset",
            "Channels missing from WELCOME were refused; unknown names are ignored",
            [
                *client_open([BUTTON, POINTER], grants=[{"name": "pointer", "id": 4}]),
                recv(
                    frame(4, 1, b"\x01"),
                    events=[ev("MessageReceived", channel_id=4, type=1, data_hex="01")],
                ),
            ],
            role="client",
            config={"channels": [BUTTON, POINTER]},
            spec="§2 House: a refused channel is omitted from WELCOME",
        ),
        vector(
            "version-major-mismatch",
            "A different major version: CLOSE 4006 naming both versions, no WELCOME",
            [
                initiate(),
                recv(
                    ctl("HELLO", {"version": [1, 0, 0], "channels": []}),
                    sent=[close_out(4006, "unsupported version 1.0.0 (server speaks 0.1.0)")],
                    state="closing",
                ),
            ],
            spec="§2 House, §5.5",
        ),
        vector(
            "version-minor-higher-client",
            "A client at 0.3.7 talking to a 0.1.0 server gets WELCOME version 0.1.0",
            [
                initiate(),
                recv(
                    ctl("HELLO", {"version": [0, 3, 7], "channels": []}),
                    sent=[out("WELCOME", {"version": [0, 1, 0]})],
                    events=[ev("HandshakeCompleted", version=[0, 1, 0], peer_version=[0, 3, 7])],
                    state="open",
                ),
            ],
            spec="§5.5",
        ),
        vector(
            "version-minor-lower-client",
            "Effective version: common major, lower minor, the server's patch",
            [
                initiate(),
                recv(
                    ctl("HELLO", {"version": [0, 1, 9], "channels": []}),
                    sent=[out("WELCOME", {"version": [0, 1, 5]})],
                    events=[ev("HandshakeCompleted", version=[0, 1, 5])],
                    state="open",
                ),
            ],
            config={"version": [0, 2, 5]},
            spec="§5.5",
        ),
        vector(
            "hello-timeout",
            "No HELLO within hello_timeout (10 s): CLOSE 4007, then 1 s for the answer",
            [
                initiate(),
                timer(9.999),
                timer(10.0, sent=[close_out(4007)], state="closing"),
                timer(10.5),
                timer(11.0, events=[terminated(4007, by_peer=False)], state="closed"),
            ],
            spec="§1, §5.7",
        ),
        vector(
            "auth-wrong-token",
            "A refused token: CLOSE 4000 and no WELCOME",
            [
                initiate(),
                recv(
                    hello(auth={"type": "token", "token": "wrong"}),
                    sent=[close_out(4000)],
                    state="closing",
                ),
            ],
            config=token,
            spec="§2 House auth",
        ),
        vector(
            "auth-missing-token",
            "A server configured with a token refuses a HELLO without one",
            [initiate(), recv(HELLO_MIN, sent=[close_out(4000)], state="closing")],
            config=token,
            spec="§2 House auth",
        ),
        vector(
            "auth-object-without-token",
            "An auth object without its token: CLOSE 4000",
            [initiate(), recv(hello(auth={"type": "token"}), sent=[close_out(4000)])],
            config=token,
            spec="§5.4",
        ),
        vector(
            "auth-transport-authenticated",
            "The WebSocket upgrade authenticated the peer: HELLO may omit auth",
            [initiate(), recv(HELLO_MIN, sent=[out("WELCOME")], events=[ev("HandshakeCompleted")])],
            config={**token, "transport_authenticated": True},
            spec="§5.11",
        ),
        vector(
            "auth-transport-and-bad-hello-token",
            "Both the upgrade and HELLO carry credentials: both must be valid",
            [
                initiate(),
                recv(
                    hello(auth={"type": "token", "token": "wrong"}),
                    sent=[close_out(4000)],
                    state="closing",
                ),
            ],
            config={**token, "transport_authenticated": True},
            spec="§5.11",
        ),
        vector(
            "auth-ignored-without-token",
            "A --no-auth server ignores auth, even an empty one",
            [
                initiate(),
                recv(
                    hello(auth={"type": "token"}),
                    sent=[out("WELCOME")],
                    events=[ev("HandshakeCompleted")],
                ),
            ],
            spec="§5.14",
        ),
        vector(
            "hello-malformed-json",
            "HELLO that is not JSON: CLOSE 4001",
            [
                initiate(),
                recv(frame(0, 0x01, b'{"version":'), sent=[close_out(4001)], state="closing"),
            ],
            spec="§2 Codes, §5.3",
        ),
        vector(
            "hello-json-array",
            "HELLO that is JSON but not an object: CLOSE 4001",
            [initiate(), recv(ctl("HELLO", [0, 1, 0]), sent=[close_out(4001)])],
            spec="§2 Codes",
        ),
        vector(
            "hello-without-version",
            "version is HELLO's only MUST field",
            [initiate(), recv(ctl("HELLO", {"channels": []}), sent=[close_out(4001)])],
            spec="§5.4",
        ),
        vector(
            "hello-without-channels",
            "channels defaults to none",
            [
                initiate(),
                recv(
                    ctl("HELLO", {"version": [0, 1, 0]}),
                    sent=[out("WELCOME")],
                    events=[ev("HandshakeCompleted")],
                ),
            ],
            spec="§5.4",
        ),
        vector(
            "hello-channel-missing-reliable",
            "A channel object missing a MUST field (reliable): CLOSE 4001",
            [
                initiate(),
                recv(
                    hello([{"name": "button", "ordered": True}]),
                    sent=[close_out(4001)],
                    state="closing",
                ),
            ],
            spec="§5.4",
        ),
        vector(
            "hello-tolerant-channel-entries",
            "An entry named control and bare strings are ignored, not rejected",
            [
                initiate(),
                recv(
                    hello([{"name": "control", "reliable": True, "ordered": True}, "button", LOG]),
                    sent=[out("WELCOME", {"channels": [{"name": "log", "id": 1}]})],
                    events=[ev("HandshakeCompleted"), opened(1, "log")],
                    state="open",
                ),
            ],
            spec="§2 House tolerant receive",
        ),
        vector(
            "hello-defer-means-refusal",
            "A policy that defers cannot answer inside WELCOME: the channel is not granted",
            [
                initiate(),
                recv(
                    hello([BUTTON]),
                    sent=[out("WELCOME", {"channels": []})],
                    events=[ev("HandshakeCompleted")],
                ),
            ],
            config={"channel_policy": "defer"},
            spec="§2 House",
        ),
        vector(
            "hello-policy-refusal",
            "A refused HELLO channel is omitted, the others granted",
            [
                initiate(),
                recv(
                    hello([BUTTON, LOG]),
                    sent=[out("WELCOME", {"channels": [{"name": "log", "id": 1}]})],
                    events=[ev("HandshakeCompleted"), opened(1, "log")],
                ),
            ],
            config={"channel_policy": {"button": 4000}},
            spec="§2 House",
        ),
        vector(
            "negotiate-smaller-peer-size",
            "maxMessageSize = min of both; the server's ping values win; extensions intersect",
            [
                initiate(),
                recv(
                    hello(
                        maxMessageSize=1000,
                        pingInterval=5,
                        pingTimeout=2,
                        extensions=["fragmentation", "session-resume", "zstd"],
                    ),
                    sent=[
                        out(
                            "WELCOME",
                            {
                                "maxMessageSize": 1000,
                                "pingInterval": 30,
                                "pingTimeout": 10,
                                "extensions": ["fragmentation"],
                            },
                        )
                    ],
                    events=[ev("HandshakeCompleted", max_message_size=1000)],
                ),
            ],
            spec="§2 WELCOME negotiation",
        ),
        vector(
            "negotiate-zero-is-unlimited",
            "0 = unlimited counts as infinity in the minimum",
            [
                initiate(),
                recv(
                    hello(maxMessageSize=0),
                    sent=[out("WELCOME", {"maxMessageSize": 65535})],
                    events=[ev("HandshakeCompleted", max_message_size=65535)],
                ),
            ],
            spec="§2 WELCOME negotiation",
        ),
        vector(
            "negotiate-both-unlimited",
            "Both sides unlimited: 0",
            [
                initiate(),
                recv(
                    hello(maxMessageSize=0),
                    sent=[out("WELCOME", {"maxMessageSize": 0})],
                    events=[ev("HandshakeCompleted", max_message_size=0)],
                ),
            ],
            config={"max_message_size": 0},
            spec="§2 WELCOME negotiation",
        ),
        vector(
            "negotiate-size-floor",
            "House: a maxMessageSize under 64 is raised to 64 so PING/PONG always fit",
            [
                initiate(),
                recv(
                    hello(maxMessageSize=10),
                    sent=[out("WELCOME", {"maxMessageSize": 64})],
                    events=[ev("HandshakeCompleted", max_message_size=64)],
                ),
            ],
            spec="House (docs/protocol/openmux.md)",
        ),
        vector(
            "client-negotiation",
            "The client takes the server's ping values and the smaller maxMessageSize",
            [
                *client_open(maxMessageSize=1000, pingInterval=15, pingTimeout=5)[:1],
                recv(
                    ctl(
                        "WELCOME",
                        {
                            "version": [0, 1, 0],
                            "maxMessageSize": 1000,
                            "pingInterval": 15,
                            "pingTimeout": 5,
                            "extensions": ["fragmentation", "zstd"],
                            "channels": [],
                        },
                    ),
                    events=[
                        ev(
                            "HandshakeCompleted",
                            max_message_size=1000,
                            ping_interval=15,
                            ping_timeout=5,
                            extensions=["fragmentation"],
                        )
                    ],
                    state="open",
                ),
                timer(15.0, sent=[exact(ping(15000))]),
            ],
            role="client",
            spec="§2 WELCOME negotiation",
        ),
        vector(
            "second-hello",
            "A second HELLO: CLOSE 1002",
            [*server_open(), recv(HELLO_MIN, sent=[close_out(1002)], state="closing")],
            spec="§5.9",
        ),
        vector(
            "ping-before-hello",
            "Anything but HELLO first: CLOSE 1002",
            [initiate(), recv(ping(1), sent=[close_out(1002)], state="closing")],
            spec="§1 House validation",
        ),
        vector(
            "open-channel-before-hello",
            "OPEN_CHANNEL before the handshake: CLOSE 1002",
            [
                initiate(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **BUTTON}),
                    sent=[close_out(1002)],
                    state="closing",
                ),
            ],
            spec="§1 House validation",
        ),
        vector(
            "app-frame-before-hello",
            "A frame on an application channel before the handshake: CLOSE 1002",
            [initiate(), recv(frame(1, 1, b"x"), sent=[close_out(1002)], state="closing")],
            spec="§1 House validation",
        ),
        vector(
            "client-hello-instead-of-welcome",
            "A client that gets anything but WELCOME/CLOSE/ERROR first: CLOSE 1002",
            [initiate(sent=[out("HELLO")]), recv(HELLO_MIN, sent=[close_out(1002)])],
            role="client",
            spec="§1 House validation",
        ),
        vector(
            "close-before-hello",
            "CLOSE is accepted before the handshake: answered with the same code",
            [
                initiate(),
                recv(
                    ctl("CLOSE", {"code": 1001, "reason": "bye"}),
                    sent=[close_out(1001)],
                    events=[terminated(1001, "bye", by_peer=True)],
                    state="closed",
                ),
            ],
            spec="§2 Close, §5.7",
        ),
        vector(
            "client-error-then-close-before-welcome",
            "A server may send ERROR just before CLOSE; the client accepts both",
            [
                initiate(sent=[out("HELLO")]),
                recv(
                    ctl("ERROR", {"code": 4005, "reason": "too big"}),
                    events=[ev("ErrorReceived", code=4005, reason="too big")],
                    state="await-welcome",
                ),
                recv(
                    ctl("CLOSE", {"code": 4005}),
                    sent=[close_out(4005)],
                    events=[terminated(4005, by_peer=True)],
                    state="closed",
                ),
            ],
            role="client",
            spec="§5.3",
        ),
        vector(
            "client-welcome-bad-version",
            "A client refuses a WELCOME of another major version",
            [
                initiate(sent=[out("HELLO")]),
                recv(
                    ctl("WELCOME", {"version": [2, 0, 0], "channels": []}),
                    sent=[close_out(4006)],
                    state="closing",
                ),
            ],
            role="client",
            spec="§2 House",
        ),
        vector(
            "client-welcome-malformed",
            "WELCOME that is not JSON: CLOSE 4001",
            [initiate(sent=[out("HELLO")]), recv(frame(0, 2, b"\xff"), sent=[close_out(4001)])],
            role="client",
            spec="§2 Codes",
        ),
        vector(
            "fragmented-hello",
            "Fragmentation is core, channel 0 included: a HELLO in two fragments",
            [
                initiate(),
                recv(frame(0, 1, HELLO_MIN[6:20], F)),
                recv(
                    frame(0, 1, HELLO_MIN[20:], FE),
                    sent=[out("WELCOME")],
                    events=[ev("HandshakeCompleted")],
                    state="open",
                ),
            ],
            spec="§5.2",
        ),
    ]
    return v


# ------------------------------------------------------------------ stream


def stream_vectors() -> list[Obj]:
    welcome = out("WELCOME")
    hs = ev("HandshakeCompleted")
    split = MAGIC + HELLO_MIN
    return [
        vector(
            "stream-client-sends-magic",
            "On a byte stream the client writes OMUX, then HELLO",
            [initiate(sent=[OUT_MAGIC, out("HELLO", {"version": [0, 1, 0]})])],
            role="client",
            mode="stream",
            spec="§1 Magic, §5.1",
            source="upstream",
        ),
        vector(
            "stream-server-echoes-magic",
            "A server sends OMUX only because the client did",
            [
                initiate(),
                recv(MAGIC + HELLO_MIN, sent=[OUT_MAGIC, welcome], events=[hs], state="open"),
            ],
            mode="stream",
            spec="§5.1",
        ),
        vector(
            "stream-no-magic",
            "An OpenMux 0.1 peer sends no magic: accepted, and none is sent back",
            [initiate(), recv(HELLO_MIN, sent=[welcome], events=[hs], state="open")],
            mode="stream",
            spec="§1 Magic House",
        ),
        vector(
            "stream-split-anyhow",
            "Magic and HELLO cut at arbitrary points give the same result",
            [
                initiate(),
                recv(split[:2], note="half the magic"),
                recv(split[2:7], note="rest of the magic and 3 header bytes"),
                recv(split[7:30]),
                recv(split[30:], sent=[OUT_MAGIC, welcome], events=[hs], state="open"),
            ],
            mode="stream",
            spec="§3 TCP: partial reads are normal",
        ),
        vector(
            "stream-garbage",
            "Bytes that are neither OMUX nor a channel-0 frame: close without a frame",
            [
                initiate(),
                recv(
                    b"GET / HTTP/1.1\r\n",
                    sent=[],
                    events=[terminated(1002, by_peer=False)],
                    state="closed",
                ),
            ],
            mode="stream",
            spec="§5.1",
        ),
        vector(
            "stream-magic-twice",
            "OMUX twice: close without a frame",
            [
                initiate(),
                recv(MAGIC + MAGIC, sent=[], events=[terminated(1002)], state="closed"),
            ],
            mode="stream",
            spec="§5.14",
        ),
        vector(
            "stream-app-frame-first",
            "A stream starting with a frame on channel 1 is not OpenMux: close without a frame",
            [initiate(), recv(frame(1, 1, b"x"), sent=[], events=[terminated(1002)])],
            mode="stream",
            spec="§5.1",
        ),
        vector(
            "stream-ping-first",
            "A valid channel-0 frame that is not HELLO: CLOSE 1002",
            [initiate(), recv(MAGIC + ping(5), sent=[OUT_MAGIC, close_out(1002)])],
            mode="stream",
            spec="§5.1",
        ),
        vector(
            "stream-several-frames-one-read",
            "One read may carry several frames",
            [
                *server_open([BUTTON], magic=True),
                recv(
                    frame(1, 1, b"a") + frame(1, 2, b"bc") + ping(7),
                    sent=[exact(pong(7, 0))],
                    events=[
                        ev("MessageReceived", channel_id=1, type=1, data_hex="61"),
                        ev("MessageReceived", channel_id=1, type=2, data_hex="6263"),
                    ],
                ),
            ],
            mode="stream",
            spec="§3 TCP",
        ),
    ]


# ---------------------------------------------------------------- control


def control_vectors() -> list[Obj]:
    return [
        vector(
            "ping-answered",
            "PING ts=1000 received 0.5 s after the transport opened: upstream's PONG vector",
            [*server_open(), recv(ping(1000), at=0.5, sent=[exact(pong(1000, 500))])],
            spec="§2 Keepalive",
            source="upstream",
        ),
        vector(
            "pong-rtt",
            "Our PING at 1.0 s carries 1000; its PONG at 1.25 s gives RTT 0.25 s",
            [
                *client_open(),
                call("ping", {}, at=1.0, sent=[exact(ping(1000))]),
                recv(pong(1000, 77), at=1.25, events=[ev("PongReceived", rtt=0.25)]),
            ],
            role="client",
            spec="§2 Keepalive",
            source="upstream",
        ),
        vector(
            "ping-wrong-length",
            "A PING payload other than 4 bytes: CLOSE 1002",
            [*server_open(), recv(frame(0, 0x10, b"\0\0\1"), sent=[close_out(1002)])],
            spec="§5.9",
        ),
        vector(
            "pong-wrong-length",
            "A PONG payload other than 8 bytes: CLOSE 1002",
            [*server_open(), recv(frame(0, 0x11, b"\0\0\0\1"), sent=[close_out(1002)])],
            spec="§5.9",
        ),
        vector(
            "close-answered",
            "The answer to CLOSE echoes its code; then the connection is over",
            [
                *server_open(),
                recv(
                    ctl("CLOSE", {"code": 1000, "reason": "bye"}),
                    sent=[close_out(1000)],
                    events=[terminated(1000, "bye", by_peer=True)],
                    state="closed",
                ),
                recv(ping(1)),
            ],
            spec="§2 Close, §5.7",
        ),
        vector(
            "close-local-answered",
            "Our CLOSE; the peer's answer ends the connection; frames between are dropped",
            [
                *server_open([BUTTON]),
                call(
                    "close",
                    {"code": 1000, "reason": "done"},
                    at=5.0,
                    sent=[close_out(1000, "done")],
                    state="closing",
                ),
                recv(frame(1, 1, b"late"), at=5.1),
                recv(ping(1), at=5.2),
                recv(
                    ctl("CLOSE", {"code": 1000}),
                    at=5.3,
                    events=[terminated(1000, "done", by_peer=False)],
                    state="closed",
                ),
            ],
            spec="§2 Close, §5.7",
        ),
        vector(
            "close-local-timeout",
            "Without an answer the closer gives up after close_timeout (1 s)",
            [
                *server_open(),
                call("close", {"code": 1000}, at=5.0, sent=[close_out(1000)]),
                timer(5.999),
                timer(6.0, events=[terminated(1000, by_peer=False)], state="closed"),
            ],
            spec="§5.7",
        ),
        vector(
            "error-received",
            "ERROR is informational",
            [
                *server_open(),
                recv(
                    ctl("ERROR", {"code": 4004, "channel": 3, "reason": "slow down"}),
                    events=[ev("ErrorReceived", code=4004, channel=3, reason="slow down")],
                    state="open",
                ),
            ],
            spec="§2 ERROR",
        ),
        vector(
            "error-malformed-ignored",
            "A malformed ERROR is never answered (no ERROR ping-pong)",
            [
                *server_open(),
                recv(frame(0, 0xF0, b"nope"), state="open"),
                recv(ctl("ERROR", {"reason": "no code"}), state="open"),
            ],
            spec="House (docs/protocol/openmux.md)",
        ),
        vector(
            "unknown-control-type",
            "An unknown channel-0 type: ERROR 1003, not fatal",
            [*server_open(), recv(frame(0, 0x42, b"{}"), sent=[error_out(1003)], state="open")],
            spec="§2",
        ),
        vector(
            "extension-type-not-negotiated",
            "0x30-0x37 without the session extensions: ERROR 1003",
            [
                *server_open(),
                recv(ctl("RESUME_ACK", {"sequence": 5}), sent=[error_out(1003)], state="open"),
                recv(frame(0, 0x30, b"{}"), sent=[error_out(1003)], state="open"),
            ],
            spec="§5.9",
        ),
        vector(
            "extension-type-negotiated",
            "With session-resume negotiated, 0x30-0x37 reach the application",
            [
                *server_open(extensions=["session-resume"]),
                recv(
                    ctl("RESUME_ACK", {"sequence": 5}),
                    events=[ev("ExtensionMessage", type=0x37, body={"sequence": 5})],
                ),
            ],
            config={"extensions": ["fragmentation", "session-resume"]},
            spec="§4",
        ),
        vector(
            "control-malformed-json",
            "Malformed JSON in a control message: ERROR 4001, not fatal",
            [
                *server_open(),
                recv(frame(0, 0x03, b'{"requestId":'), sent=[error_out(4001)], state="open"),
            ],
            spec="§2 Codes",
        ),
        vector(
            "welcome-to-server",
            "WELCOME sent to a server after the handshake: CLOSE 1002",
            [*server_open(), recv(ctl("WELCOME", {"version": [0, 1, 0]}), sent=[close_out(1002)])],
            spec="§5.9",
        ),
    ]


# --------------------------------------------------------------- channels


def channel_vectors() -> list[Obj]:
    many = [{"name": f"c{i}", "reliable": True, "ordered": True} for i in range(1, 255)]
    return [
        vector(
            "open-channel-acked",
            "Client-initiated open: the server allocates the id and acknowledges",
            [
                *server_open([BUTTON]),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **LOG}),
                    sent=[out("CHANNEL_ACK", {"requestId": 1, "id": 2, "name": "log"})],
                    events=[opened(2, "log", rid=1)],
                ),
                recv(
                    frame(2, 9, b"ok"),
                    events=[ev("MessageReceived", channel_id=2, data_hex="6f6b")],
                ),
            ],
            spec="§2 Dynamic channels",
        ),
        vector(
            "client-open-channel",
            "A client's OPEN_CHANNEL carries no id; CHANNEL_ACK brings it",
            [
                *client_open(),
                call(
                    "open_channel",
                    {"name": "log", "reliable": True, "ordered": True},
                    sent=[out("OPEN_CHANNEL", {"requestId": 1, **LOG}, absent=["id"])],
                ),
                recv(
                    ctl("CHANNEL_ACK", {"requestId": 1, "id": 7, "name": "log"}),
                    events=[opened(7, "log", local=True, rid=1)],
                ),
            ],
            role="client",
            spec="§2 House: the server is the only allocator",
        ),
        vector(
            "client-open-rejected",
            "CHANNEL_REJECT may carry any integer code, HTTP-style ones included",
            [
                *client_open(),
                call("open_channel", {"name": "log"}, sent=[out("OPEN_CHANNEL")]),
                recv(
                    ctl("CHANNEL_REJECT", {"requestId": 1, "code": 403, "reason": "no"}),
                    events=[ev("ChannelRejected", request_id=1, name="log", code=403, reason="no")],
                ),
            ],
            role="client",
            spec="§2 House",
        ),
        vector(
            "server-initiated-open",
            "A server's OPEN_CHANNEL carries the id it chose; the client's ACK echoes it",
            [
                *server_open(),
                call(
                    "open_channel",
                    {"name": "files", "reliable": True, "ordered": True},
                    sent=[out("OPEN_CHANNEL", {"requestId": 1, "id": 1, "name": "files"})],
                ),
                recv(
                    ctl("CHANNEL_ACK", {"requestId": 1, "id": 1, "name": "files"}),
                    events=[opened(1, "files", local=True, rid=1)],
                ),
            ],
            spec="§2 House",
        ),
        vector(
            "client-accepts-server-open",
            "A client answers a server-initiated open with CHANNEL_ACK echoing the id",
            [
                *client_open(),
                recv(
                    ctl(
                        "OPEN_CHANNEL",
                        {
                            "requestId": 1,
                            "id": 5,
                            "name": "files",
                            "reliable": True,
                            "ordered": True,
                        },
                    ),
                    sent=[out("CHANNEL_ACK", {"requestId": 1, "id": 5, "name": "files"})],
                    events=[opened(5, "files", rid=1)],
                ),
            ],
            role="client",
            spec="§2 House",
        ),
        vector(
            "client-rejects-server-open-without-id",
            "A server-initiated OPEN_CHANNEL without an id: CHANNEL_REJECT 4001",
            [
                *client_open(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **LOG}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 1, "code": 4001})],
                ),
            ],
            role="client",
            spec="§5.6",
        ),
        vector(
            "duplicate-request-id",
            "A requestId still pending (deferred): CHANNEL_REJECT 1002; the first is then accepted",
            [
                *server_open(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 7, **LOG}),
                    events=[ev("ChannelRequested", request_id=7, spec={"name": "log"})],
                ),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 7, **BUTTON}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 7, "code": 1002})],
                ),
                call(
                    "accept_channel",
                    {"request_id": 7},
                    sent=[out("CHANNEL_ACK", {"requestId": 7, "id": 1, "name": "log"})],
                ),
            ],
            config={"channel_policy": "defer"},
            spec="§2 House, §5.6",
        ),
        vector(
            "deferred-then-rejected",
            "A deferred request answered later with the application's code",
            [
                *server_open(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 2, **LOG}),
                    events=[ev("ChannelRequested", request_id=2)],
                ),
                call(
                    "reject_channel",
                    {"request_id": 2, "code": 4000, "reason": "not for you"},
                    sent=[out("CHANNEL_REJECT", {"requestId": 2, "code": 4000})],
                ),
            ],
            config={"channel_policy": "defer"},
            spec="§2 House",
        ),
        vector(
            "duplicate-name",
            "A channel name already open: CHANNEL_REJECT 1002",
            [
                *server_open([BUTTON]),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **BUTTON}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 1, "code": 1002})],
                ),
            ],
            spec="§2 House",
        ),
        vector(
            "no-free-id",
            "All 254 ids in use: CHANNEL_REJECT 4002",
            [
                initiate(),
                recv(hello(many), sent=[out("WELCOME")], events=None, state="open"),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **LOG}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 1, "code": 4002})],
                ),
            ],
            spec="§2 House",
        ),
        vector(
            "application-refusal",
            "The application refuses: CHANNEL_REJECT with its code",
            [
                *server_open(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 1, **LOG}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 1, "code": 4000})],
                ),
            ],
            config={"channel_policy": 4000},
            spec="§2 House",
        ),
        vector(
            "open-channel-without-request-id",
            "OPEN_CHANNEL without a usable requestId: ERROR 4001",
            [
                *server_open(),
                recv(ctl("OPEN_CHANNEL", LOG), sent=[error_out(4001)], state="open"),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": "1", **LOG}),
                    sent=[error_out(4001)],
                    state="open",
                ),
            ],
            spec="§5.6",
        ),
        vector(
            "open-channel-missing-must-field",
            "OPEN_CHANNEL with a requestId but no `ordered`: CHANNEL_REJECT 4001",
            [
                *server_open(),
                recv(
                    ctl("OPEN_CHANNEL", {"requestId": 3, "name": "log", "reliable": True}),
                    sent=[out("CHANNEL_REJECT", {"requestId": 3, "code": 4001})],
                ),
            ],
            spec="§5.6",
        ),
        vector(
            "close-channel",
            "CLOSE_CHANNEL is not acknowledged; the id is free for reuse",
            [
                *server_open([BUTTON]),
                recv(
                    ctl("CLOSE_CHANNEL", {"id": 1, "reason": "done"}),
                    events=[
                        ev("ChannelClosed", channel={"id": 1, "name": "button"}, reason="done")
                    ],
                ),
                recv(
                    frame(1, 1, b"x"),
                    sent=[error_out(4003, 1)],
                    note="the peer should have stopped",
                ),
            ],
            spec="§2 Dynamic channels, §5.7",
        ),
        vector(
            "close-channel-zero",
            "CLOSE_CHANNEL for id 0: ERROR 1002 (channel 0 cannot be closed)",
            [
                *server_open(),
                recv(ctl("CLOSE_CHANNEL", {"id": 0}), sent=[error_out(1002, 0)], state="open"),
            ],
            spec="§2 House",
        ),
        vector(
            "close-channel-unknown",
            "CLOSE_CHANNEL for an id that is not open: ERROR 4003",
            [
                *server_open(),
                recv(ctl("CLOSE_CHANNEL", {"id": 42}), sent=[error_out(4003, 42)], state="open"),
            ],
            spec="§2 House",
        ),
        vector(
            "unknown-channel-frame",
            "A frame on a channel that is not open: ERROR 4003, frame dropped, not fatal",
            [
                *server_open([BUTTON]),
                recv(frame(9, 1, b"x"), sent=[error_out(4003, 9)], state="open"),
                recv(
                    frame(1, 1, b"y"), events=[ev("MessageReceived", channel_id=1, data_hex="79")]
                ),
            ],
            spec="§1 House validation",
        ),
        vector(
            "mouse-move",
            "Upstream's MOUSE_MOVE on the pointer channel (id 1)",
            [
                *server_open([POINTER]),
                recv(
                    frame(1, 0x01, bytes.fromhex("0200012c")),
                    events=[ev("MessageReceived", channel_id=1, type=1, data_hex="0200012c")],
                ),
            ],
            spec="§1",
            source="upstream",
        ),
        vector(
            "extended-frame",
            "An EXTENDED_LENGTH frame with a short payload is accepted",
            [
                *server_open([BUTTON]),
                recv(
                    frame(1, 0x07, b"hello", ext=True),
                    events=[ev("MessageReceived", channel_id=1, type=7, data_hex=b"hello".hex())],
                ),
            ],
            spec="§1",
        ),
    ]


# ----------------------------------------------------- fragments and limits


def fragment_vectors() -> list[Obj]:
    big = bytes(range(150))
    return [
        vector(
            "fragmented-message",
            "Three fragments, one message",
            [
                *server_open(APP),
                recv(frame(1, 2, b"abc", F)),
                recv(frame(1, 2, b"def", F)),
                recv(
                    frame(1, 2, b"gh", FE),
                    events=[
                        ev("MessageReceived", channel_id=1, type=2, data_hex=b"abcdefgh".hex())
                    ],
                ),
            ],
            spec="§1 Fragmentation",
        ),
        vector(
            "fragments-interleave-across-channels",
            "Other channels may interleave with a fragmented message",
            [
                *server_open(APP),
                recv(frame(1, 2, b"ab", F)),
                recv(
                    frame(2, 1, b"p"),
                    events=[ev("MessageReceived", channel_id=2, type=1, data_hex="70")],
                ),
                recv(frame(3, 4, b"l"), events=[ev("MessageReceived", channel_id=3, type=4)]),
                recv(
                    frame(1, 2, b"c", FE),
                    events=[ev("MessageReceived", channel_id=1, data_hex="616263")],
                ),
            ],
            spec="§1 Fragmentation",
        ),
        vector(
            "fragment-type-change",
            "A fragment of another type before FRAGMENT_END: CLOSE 1002",
            [
                *server_open(APP),
                recv(frame(1, 2, b"ab", F)),
                recv(frame(1, 3, b"cd", F), sent=[close_out(1002)], state="closing"),
            ],
            spec="§5.2",
        ),
        vector(
            "fragment-new-message",
            "An unfragmented message before FRAGMENT_END: CLOSE 1002",
            [
                *server_open(APP),
                recv(frame(1, 2, b"ab", F)),
                recv(frame(1, 2, b"cd"), sent=[close_out(1002)], state="closing"),
            ],
            spec="§5.2",
        ),
        vector(
            "fragment-control-interleaved",
            "Channel 0 included: a PING inside a fragmented control message: CLOSE 1002",
            [
                *server_open(),
                recv(frame(0, 3, b'{"requestId"', F)),
                recv(ping(1), sent=[close_out(1002)], state="closing"),
            ],
            spec="§5.2",
        ),
        vector(
            "fragment-on-unreliable",
            "FRAGMENT on an unreliable channel: CLOSE 1002",
            [
                *server_open(APP),
                recv(frame(2, 1, b"ab", FE), sent=[close_out(1002)], state="closing"),
            ],
            spec="§1 Fragmentation",
        ),
        vector(
            "session-fragment-end-without-fragment",
            "FRAGMENT_END without FRAGMENT: CLOSE 1002",
            [*server_open(APP), recv(frame(1, 2, b"ab", 0x04), sent=[close_out(1002)])],
            spec="§1 House validation",
        ),
        vector(
            "session-reserved-byte",
            "Reserved header byte not 0: CLOSE 1002",
            [*server_open(APP), recv(bytes.fromhex("011000010000"), sent=[close_out(1002)])],
            spec="§1 House validation",
        ),
        vector(
            "session-reserved-flag-bits",
            "Reserved flag bits set: CLOSE 1002",
            [*server_open(APP), recv(bytes.fromhex("011010000000"), sent=[close_out(1002)])],
            spec="§1 House validation",
        ),
        vector(
            "session-channel-255",
            "Channel 255: CLOSE 1002",
            [*server_open(APP), recv(bytes.fromhex("ff0100000000"), sent=[close_out(1002)])],
            spec="§1 House validation",
        ),
        vector(
            "session-two-frames-one-message",
            "Message transports carry one frame per message: CLOSE 1002",
            [*server_open(), recv(ping(1) + ping(2), sent=[close_out(1002)], state="closing")],
            spec="§3 WebSocket",
        ),
        vector(
            "declared-length-over-max",
            "A header declaring more than the negotiated maxMessageSize: ERROR 4005 then "
            "CLOSE 4005, decided on the 6 header bytes",
            [
                *server_open([BUTTON], maxMessageSize=1024),
                recv(
                    bytes.fromhex("010100000401"),
                    sent=[error_out(4005), close_out(4005)],
                    state="closing",
                ),
            ],
            mode="stream",
            spec="§1 House validation",
        ),
        vector(
            "declared-4gib",
            "A hostile EXTENDED header declaring 4 GiB - 1: refused before allocating",
            [
                *server_open([BUTTON]),
                recv(
                    bytes.fromhex("01010100ffffffff"),
                    sent=[error_out(4005), close_out(4005)],
                    state="closing",
                ),
            ],
            mode="stream",
            spec="§1 House validation",
        ),
        vector(
            "message-over-max",
            "The same in message mode, with the whole 1025-byte payload",
            [
                *server_open([BUTTON], maxMessageSize=1024),
                recv(frame(1, 1, b"\0" * 1025), sent=[error_out(4005), close_out(4005)]),
            ],
            spec="§1 House validation",
        ),
        vector(
            "reassembly-over-limit",
            "Fragments adding up past max_reassembly (1000 here): CLOSE 4005",
            [
                *server_open(APP),
                recv(frame(1, 2, b"\0" * 600, F)),
                recv(
                    frame(1, 2, b"\0" * 600, F),
                    sent=[optional(error_out(4005)), close_out(4005)],
                    state="closing",
                ),
            ],
            config={"max_reassembly": 1000},
            spec="§1 House validation",
        ),
        vector(
            "send-fragments",
            "A 150-byte message with maxMessageSize 64 goes out as 64+64+22 bytes",
            [
                *server_open(APP, maxMessageSize=64),
                call(
                    "send_message",
                    {"channel_id": 1, "type": 2, "data_hex": big.hex()},
                    sent=[
                        exact(frame(1, 2, big[:64], F)),
                        exact(frame(1, 2, big[64:128], F)),
                        exact(frame(1, 2, big[128:], FE)),
                    ],
                ),
            ],
            spec="§1 Fragmentation",
        ),
        vector(
            "send-too-large-unreliable",
            "Too large for an unreliable channel: a local error (4005), nothing sent",
            [
                *server_open(APP, maxMessageSize=64),
                call(
                    "send_message",
                    {"channel_id": 2, "type": 1, "data_hex": big.hex()},
                    raises=4005,
                ),
            ],
            spec="§1 Fragmentation",
        ),
    ]


# ------------------------------------------------------------------ timers


def timer_vectors() -> list[Obj]:
    return [
        vector(
            "ping-timeout",
            "PING at pingInterval; nothing for pingTimeout: CLOSE 1001 'ping timeout'",
            [
                *server_open(),
                timer(30.0, sent=[exact(ping(30000))], state="open"),
                timer(39.9),
                timer(
                    40.0,
                    sent=[close_out(1001, "ping timeout")],
                    events=[terminated(1001, "ping timeout", by_peer=False)],
                    state="closed",
                ),
            ],
            spec="§2 Keepalive, §5.10",
        ),
        vector(
            "ping-timeout-lenient",
            "Anything received after our PING proves liveness; dead when silent for pingTimeout",
            [
                *server_open([BUTTON]),
                timer(30.0, sent=[exact(ping(30000))]),
                recv(frame(1, 1, b"busy"), at=35.0, events=[ev("MessageReceived", channel_id=1)]),
                timer(40.0, state="open"),
                timer(
                    45.0,
                    sent=[close_out(1001, "ping timeout")],
                    events=[terminated(1001, "ping timeout")],
                    state="closed",
                ),
            ],
            spec="House (docs/protocol/openmux.md)",
        ),
        vector(
            "pong-resets-keepalive",
            "A PONG clears the timeout; the next PING is an interval after the last receipt",
            [
                *server_open(),
                timer(30.0, sent=[exact(ping(30000))]),
                recv(pong(30000, 1), at=31.0, events=[ev("PongReceived", rtt=1.0)]),
                timer(45.0, state="open"),
                timer(61.0, sent=[exact(ping(61000))], state="open"),
            ],
            spec="§2 Keepalive",
        ),
        vector(
            "eof",
            "The transport closing under an open connection",
            [
                *server_open(),
                {
                    "op": "eof",
                    "at": 3.0,
                    "expect": {
                        "sent": [],
                        "events": [terminated(1001, by_peer=True)],
                        "state": "closed",
                    },
                },
            ],
            spec="§3 stdio: EOF = peer closed",
        ),
    ]


FILES = {
    "frames.json": ("Frame codec: header parsing and validation", frame_vectors),
    "handshake.json": ("HELLO/WELCOME, versions, auth, negotiation", handshake_vectors),
    "stream.json": ("Byte-stream transports: magic and arbitrary splits", stream_vectors),
    "control.json": ("Channel 0: PING/PONG, CLOSE, ERROR, unknown types", control_vectors),
    "channels.json": ("Dynamic channels", channel_vectors),
    "fragments.json": ("Fragmentation, header validation and size limits", fragment_vectors),
    "timers.json": ("Keepalive and transport loss", timer_vectors),
}


def pretty(value: Any, indent: str = "") -> str:
    """JSON with anything short kept on one line, so a vector reads top to bottom."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + len(indent) <= 96 or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, list):
        items = [inner + pretty(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    items = [f"{inner}{json.dumps(k)}: {pretty(v, inner)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def build() -> dict[str, str]:
    files: dict[str, str] = {}
    names: set[str] = set()
    for filename, (title, make) in FILES.items():
        vectors = make()
        for v in vectors:
            if v["name"] in names:
                raise ValueError(f"duplicate vector name {v['name']}")
            names.add(v["name"])
        doc = {"format": "openmux-vectors/1", "title": title, "vectors": vectors}
        files[filename] = pretty(doc) + "\n"
    return files


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for filename, text in build().items():
        (OUT / filename).write_text(text)
    print(f"wrote {len(FILES)} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
