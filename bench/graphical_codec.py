"""VROOM-Graphical, sans-IO cost per message on one core (no transport).

    .venv/bin/python bench/graphical_codec.py [--runs N]

Figures, one line each (`name value unit`), best of `--runs` runs:

- `decode_input` of a MOUSE_MOVE and of a KEY_DOWN ("a", "KeyA", Shift):
  the packed decoders alone.
- a COMMAND click decoded from CBOR and from JSON (`decode_control`, with the
  CBOR pre-scan).
- the server path for one input event: an OpenMux `MessageReceived` on the
  pointer channel through `GraphicalServer.handle_event` to a `PointerInput`
  (the protocol's share of vroomd's input latency; goal for the whole path
  in issue 6: p50 <= 5 ms).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import cbor2
import openmux
import openmux.testing
from vroom_graphical import (
    GraphicalClient,
    GraphicalServer,
    PointerInput,
    Viewport,
    channel_policy,
    control_spec,
    decode_control,
    decode_input,
)

N = 100_000


def best(fn: Callable[[], int], runs: int) -> float:
    """Best time per unit, in seconds."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        times.append((time.perf_counter() - t0) / count)
    return min(times)


def server_in_interact() -> tuple[GraphicalServer, int]:
    pair = openmux.testing.Pair(
        openmux.Config(is_client=True, channels=[control_spec()], ping_interval=0),
        openmux.Config(is_client=False, channel_policy=channel_policy, ping_interval=0),
        handshake=False,
    )
    server = GraphicalServer(pair.server)
    client = GraphicalClient(pair.client, viewport=Viewport(1280, 720), mode="interact")
    while pair.client._out or pair.server._out:
        for ev in pair.to_server():
            server.handle_event(ev)
        for ev in pair.to_client():
            client.handle_event(ev)
    assert client.input_ready
    pointer = next(c.id for c in pair.server.channels.values() if c.name == "pointer")
    return server, pointer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    move = bytes.fromhex("0200012c")
    key = bytes.fromhex("0141044b65794101")

    def mouse() -> int:
        for _ in range(N):
            decode_input(0x01, move)
        return N

    def keys() -> int:
        for _ in range(N):
            decode_input(0x12, key)
        return N

    body = {"id": "c1", "action": "click", "selector": "#submit"}
    as_cbor, as_json = cbor2.dumps(body), json.dumps(body).encode()

    def command(payload: bytes, encoding: str) -> Callable[[], int]:
        def run() -> int:
            for _ in range(N // 10):
                decode_control(0x85, payload, encoding, from_client=True)  # type: ignore[arg-type]
            return N // 10

        return run

    server, pointer = server_in_interact()
    event = openmux.MessageReceived(pointer, 0x01, move)

    def server_path() -> int:
        for _ in range(N):
            (out,) = server.handle_event(event)
        assert isinstance(out, PointerInput)
        return N

    print(f"graphical_decode_mouse_move {best(mouse, runs) * 1e9:.0f} ns")
    print(f"graphical_decode_key_down {best(keys, runs) * 1e9:.0f} ns")
    print(f"graphical_decode_command_cbor {best(command(as_cbor, 'cbor'), runs) * 1e6:.1f} us")
    print(f"graphical_decode_command_json {best(command(as_json, 'json'), runs) * 1e6:.1f} us")
    print(f"graphical_server_pointer_event {best(server_path, runs) * 1e6:.2f} us")


if __name__ == "__main__":
    main()
