"""The conformance server: what every transport's endpoint serves.

Behaviour, per channel name:
- `ctl*`: JSON commands (type 2), answered with JSON (type 3) on the same channel:
  `open` {name, reliable?, ordered?} -> {ok, id} | {ok: false, code}; `close` {name};
  `channels` -> {channels}; `info` -> {application, transport_authenticated, hello};
  `flood` {name, count, size}: send `count` messages of `size` bytes on channel
  `name` as fast as back-pressure allows, then report {op: "flood-done", waited,
  max_buffer} (the largest transport buffer seen: must stay bounded).
- `sink*`: read and drop.
- anything else: echo every message back with the same type.
Channel policy: names starting with `deny` are refused with 4000.

Run as a script it serves one session on stdin/stdout (the stdio endpoint):
`python peer.py '<json server options>'`.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from typing import Any

import openmux.aio as aio
from openmux import ChannelSpec

CMD, REPLY = 2, 3
AUTH_FAILED = 4000


def policy(spec: ChannelSpec) -> int | None:
    return AUTH_FAILED if spec.name.startswith("deny") else None


async def handler(session: aio.Session) -> None:
    tasks: set[asyncio.Task[None]] = set()

    def start(channel: aio.Channel) -> None:
        task = asyncio.get_running_loop().create_task(serve_channel(session, channel, start))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for channel in list(session.channels.values()):
        start(channel)
    try:
        while True:
            start(await session.accept())
    except aio.SessionClosedError:
        pass
    finally:
        for task in tasks:
            task.cancel()


async def serve_channel(session: aio.Session, channel: aio.Channel, start: Any) -> None:
    if channel.name.startswith("ctl"):
        async for message in channel:
            if message.type == CMD:
                reply = await command(session, channel, json.loads(message.data), start)
                if reply is not None:
                    await channel.send(REPLY, json.dumps(reply).encode())
    elif channel.name.startswith("sink"):
        async for _ in channel:
            pass
    else:
        async for message in channel:
            await channel.send(message.type, message.data)


async def command(
    session: aio.Session, ctl: aio.Channel, cmd: dict[str, Any], start: Any
) -> dict[str, Any] | None:
    op = cmd["op"]
    if op == "open":
        try:
            channel = await session.open_channel(
                cmd["name"],
                reliable=cmd.get("reliable", True),
                ordered=cmd.get("ordered", True),
            )
        except aio.ChannelRejectedError as exc:
            return {"ok": False, "code": exc.code}
        start(channel)
        return {"ok": True, "id": channel.id}
    if op == "close":
        await session.channel(cmd["name"]).close("asked to")
        return {"ok": True}
    if op == "channels":
        return {"channels": sorted(session.channels)}
    if op == "info":
        return {
            "transport_authenticated": session.connection.transport_authenticated,
            "hello": dict(session.hello or {}),
        }
    if op == "flood":
        asyncio.get_running_loop().create_task(flood(session, ctl, cmd))
        return None
    return {"ok": False, "error": f"unknown op {op}"}


async def flood(session: aio.Session, ctl: aio.Channel, cmd: dict[str, Any]) -> None:
    channel = session.channel(cmd["name"])
    filler = b"\xa5" * (cmd["size"] - 4)
    waited, max_buffer = False, 0
    try:
        for seq in range(cmd["count"]):
            waited = waited or session.writing_paused
            await channel.send(1, struct.pack(">I", seq) + filler)
            max_buffer = max(max_buffer, session.write_buffer_size() or 0)
        report = {"op": "flood-done", "waited": waited, "max_buffer": max_buffer}
        await ctl.send(REPLY, json.dumps(report).encode())
    except (aio.SessionClosedError, aio.ChannelClosedError):
        pass


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    asyncio.run(aio.serve_stdio(handler, channel_policy=policy, **options))


if __name__ == "__main__":
    main()
