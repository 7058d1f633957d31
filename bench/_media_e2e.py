"""End to end through a real vroomd: WebRTC beside the WebSocket JPEG path, same run.

vroomd runs as a child process (`--no-auth`, loopback), its agent Chromium
shows the clock page of _media_pages.py (served here on 127.0.0.1), resized
to 1280x720 with RESIZE. A person's Chromium opens vroomd's own page twice,
one path after the other: `/` (WebRTC: H264 in a <video>) and
`/?transport=ws` (JPEG frames drawn on a <canvas>), alternated
`BENCH_E2E_ROUNDS` times (default 3; each figure is the median of the
rounds). For `BENCH_E2E_SECONDS` (default 5) on each path the page counts
the frames it shows (WebRTC: the <video>'s `presentedFrames`; WebSocket:
each JPEG drawn) and reads the clock from their pixels: glass-to-glass
latency = now - the time the agent page painted. WebRTC's "now" is the
start of `requestVideoFrameCallback`, the rendering step after the frame was
presented (before the probe copies the video to a canvas to read it: 5-20 ms
in this software-rendering Chromium, a cost of the probe, not of showing
the frame); the WebSocket page's is right after it drew the JPEG on the
canvas, before that is composited: `..._glass_to_glass_at_next_render_p50`
also measures it at its next rendering step (`requestAnimationFrame`), the
figure comparable to WebRTC's. Both browsers share this machine's clock.
CPU: vroomd's process, and vroomd plus its Playwright driver (the node
process that relays the agent Chromium's CDP screencast), as a share of one
core over the window.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _media_pages import AGENT_PAGE, CHROMIUM_ARGS, DECODE_JS, TOP
from _proc import cpu_seconds, free_port

ROOT = Path(__file__).resolve().parents[1]
VROOMD = ROOT / ".venv" / "bin" / "vroomd"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_E2E_ROUNDS", "3"))
PATHS = tuple(os.environ.get("BENCH_E2E_PATHS", "webrtc,ws").split(","))
"""`webrtc`, `ws` or both: a quick look at one path (both for the figures)."""
VROOMD_ARGS = os.environ.get("BENCH_E2E_VROOMD_ARGS", "").split()
"""Extra vroomd options, to compare settings (e.g. `--video-fps 30 --playout-delay browser`)."""

WEBRTC_PROBE = (
    DECODE_JS
    + f"""
window.bench = {{ lat: [], frames: 0, held: [], callbacks: 0, recv: [] }};
(() => {{
  const v = document.getElementById("rtcvideo");
  const c = document.createElement("canvas");
  const x = c.getContext("2d", {{ willReadFrequently: true }});
  // The time is taken as the callback starts (the rendering step that shows
  // the frame): copying the video to a canvas to read the clock costs this
  // software-rendering Chromium 5-20 ms, which the person never waits for.
  // Frames shown = the video's presentedFrames: callbacks are at most one
  // per rendering step and skip frames while the copy runs.
  function onFrame(now, meta) {{
    const t = Date.now();
    if (bench.base === undefined) bench.base = meta.presentedFrames;
    bench.frames = meta.presentedFrames - bench.base;
    if (meta.receiveTime) bench.held.push(meta.expectedDisplayTime - meta.receiveTime);
    if (v.videoWidth) {{
      const scale = v.videoWidth / vroom.client.agent.width, top = Math.round({TOP} * scale);
      const w = Math.round(24 * 32 * scale), h = Math.round(32 * scale);
      c.width = w; c.height = h;
      x.drawImage(v, 0, top, w, h, 0, 0, w, h);
      const code = readClock(x, scale, 0, top);
      const l = ((t & 0xffffff) - code + 0x1000000) % 0x1000000;
      if (l < 5000) bench.lat.push(l);
      if (meta.receiveTime) {{
        const at = Math.round(performance.timeOrigin + meta.receiveTime) & 0xffffff;
        const r = (at - code + 0x1000000) % 0x1000000;
        if (r < 5000) bench.recv.push(r);
      }}
      bench.callbacks++;
    }}
    v.requestVideoFrameCallback(onFrame);
  }}
  v.requestVideoFrameCallback(onFrame);
}})();
window.benchStats = async () => {{
  const out = {{}};
  (await vroom.pc.getStats()).forEach((s) => {{
    if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(out, {{
      decoded: s.framesDecoded, dropped: s.framesDropped,
      jitterBufferDelay: s.jitterBufferDelay, emitted: s.jitterBufferEmittedCount,
      jitterBufferTargetDelay: s.jitterBufferTargetDelay,
      processing: s.totalProcessingDelay, decode: s.totalDecodeTime,
      assembly: s.totalAssemblyTime, assembled: s.framesAssembledFromMultiplePackets,
      received: s.framesReceived, packets: s.packetsReceived, keyframes: s.keyFramesDecoded,
      pli: s.pliCount, nack: s.nackCount,
    }});
  }});
  return out;
}};
"""
)

RECEIVE_FIGURES = (
    ("jitter_buffer_ms", "jitterBufferDelay", "emitted"),
    ("jitter_target_ms", "jitterBufferTargetDelay", "emitted"),
    ("processing_ms", "processing", "decoded"),
    ("decode_ms", "decode", "decoded"),
)
"""The person's getStats() breakdown, per frame over the window (stderr only):
receipt of a frame's first packet -> decoded (`processing`), of which the
decode itself, and the time frames waited in the jitter buffer."""

WS_PROBE = (
    DECODE_JS
    + """
window.bench = { lat: [], frames: 0, shown: [], recv: [] };
window.vroom.onframe = (ctx, arrival) => {
  const code = readClock(ctx, ctx.canvas.width / vroom.client.agent.width);
  const l = latencyOf(code);
  if (l < 5000) bench.lat.push(l);
  if (arrival) {
    const at = Math.round(performance.timeOrigin + arrival) & 0xffffff;
    const r = (at - code + 0x1000000) % 0x1000000;
    if (r < 5000) bench.recv.push(r);
  }
  bench.frames++;
  // The canvas is composited at the next rendering step, where WebRTC's
  // requestVideoFrameCallback runs too: the comparable figure.
  requestAnimationFrame(() => {
    const s = latencyOf(code);
    if (s < 5000) bench.shown.push(s);
  });
};
undefined;
"""
)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def driver_of(pid: int) -> int | None:
    """Playwright's node driver among vroomd's children."""
    for child in children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"node" in cmd or b"playwright" in cmd:
            return child
    return None


async def serve_clock() -> tuple[asyncio.Server, int]:
    body = AGENT_PAGE.encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def measure(browser: Any, base: str, clock_url: str, path: str, pid: int) -> dict[str, float]:
    page = await browser.new_page(viewport={"width": 1700, "height": 1000}, bypass_csp=True)
    try:
        url = base + ("/?transport=ws" if path == "ws" else "/")
        await page.goto(url)
        # Size the window so that the stage (the agent's viewport) is 1280x720.
        stage = await page.evaluate(
            "(() => { const r = document.getElementById('stage').getBoundingClientRect();"
            " return [r.width, r.height]; })()"
        )
        await page.set_viewport_size(
            {"width": 1700 + 1280 - round(stage[0]), "height": 1000 + 720 - round(stage[1])}
        )
        await page.goto("about:blank")
        await page.goto(url)
        await page.wait_for_function("window.vroom && window.vroom.path", timeout=30_000)
        actual = await page.evaluate("window.vroom.path")
        await page.evaluate(
            "async (url) => {"
            " await vroom.client.setMode('interact'); await vroom.client.navigate(url); }",
            clock_url,
        )
        await page.evaluate(WEBRTC_PROBE if path == "webrtc" else WS_PROBE)
        try:
            await page.wait_for_function("bench.lat.length > 30", timeout=30_000)
        except Exception:
            info = await page.evaluate(
                "({frames: bench.frames, lat: bench.lat.slice(0, 5), agent: vroom.client.agent,"
                " state: vroom.client.state, w: document.getElementById('rtcvideo').videoWidth})"
            )
            if path == "webrtc":
                info["stats"] = await page.evaluate("benchStats()")
            raise RuntimeError(f"{path}: no clock read from the frames: {info}") from None
        await asyncio.sleep(1)
        await page.evaluate(
            "bench.lat = []; bench.frames = 0; bench.held = []; bench.shown = []; bench.recv = [];"
            " bench.base = undefined; bench.callbacks = 0"
        )
        rtc0 = await page.evaluate("benchStats()") if path == "webrtc" else {}
        driver = driver_of(pid)
        cpu0 = cpu_seconds(pid)
        dcpu0 = cpu_seconds(driver) if driver else 0.0
        t0 = time.monotonic()
        await asyncio.sleep(SECONDS)
        result = await page.evaluate(
            "({ lat: bench.lat, frames: bench.frames, agent: vroom.client.agent,"
            " shown: bench.shown || [], recv: bench.recv || [] })"
        )
        wall = time.monotonic() - t0
        rtc1 = await page.evaluate("benchStats()") if path == "webrtc" else {}
        held = await page.evaluate("bench.held") if path == "webrtc" else []
        cpu = cpu_seconds(pid) - cpu0
        dcpu = (cpu_seconds(driver) - dcpu0) if driver else 0.0
        lat = result["lat"]
        receive: dict[str, float] = {}
        for name, total, count in RECEIVE_FIGURES:
            if rtc1.get(total) is not None and rtc1.get(count):
                frames = rtc1[count] - rtc0.get(count, 0)
                spent = rtc1[total] - rtc0.get(total, 0)
                receive[name] = 1000 * spent / frames if frames else float("nan")
        if held:
            receive["received_to_shown_ms_p50"] = statistics.median(held)
        if result["recv"]:
            receive["received_p50"] = statistics.median(result["recv"])
        if result["shown"]:
            receive["shown_p50"] = statistics.median(result["shown"])
        if rtc1:
            receive["dropped"] = float(rtc1.get("dropped", 0) - rtc0.get("dropped", 0))
        return {
            **receive,
            "path": actual,
            "size": f"{result['agent']['width']}x{result['agent']['height']}",
            "fps": result["frames"] / wall,
            "p50": statistics.median(lat) if lat else float("nan"),
            "p90": statistics.quantiles(lat, n=10)[-1] if len(lat) > 10 else float("nan"),
            "cpu": cpu / wall,
            "cpu_with_driver": (cpu + dcpu) / wall,
        }
    finally:
        await page.close()


async def e2e(line: Callable[[str, float, str], None]) -> None:
    from playwright.async_api import async_playwright

    clock, clock_port = await serve_clock()
    port = free_port()
    state = tempfile.mkdtemp(prefix="vroomd-bench-")
    proc = subprocess.Popen(
        [
            str(VROOMD),
            "--listen",
            f"ws://127.0.0.1:{port}",
            "--no-auth",
            "--state-dir",
            state,
            "--log-level",
            "warning",
            *VROOMD_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if not re.search("ready", ready):
            raise RuntimeError(f"vroomd did not start: {ready}")
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            base = f"http://127.0.0.1:{port}"
            clock_url = f"http://127.0.0.1:{clock_port}/"
            runs: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
            for _ in range(ROUNDS):  # alternated: both paths see the same machine load
                for path in PATHS:
                    runs[path].append(await measure(browser, base, clock_url, path, proc.pid))
                    await asyncio.sleep(1)
            await browser.close()
        results = {
            path: {
                key: (
                    statistics.median(r[key] for r in rs)
                    if isinstance(rs[0][key], float)
                    else rs[0][key]
                )
                for key in rs[0]
            }
            for path, rs in runs.items()
        }
        for path, name in (("webrtc", "webrtc"), ("ws", "websocket_jpeg")):
            if path not in results:
                continue
            r = results[path]
            print(f"# {path}: agent viewport {r['size']}", file=sys.stderr)
            breakdown = [f"{k} {r[k]:.1f}" for k, *_ in RECEIVE_FIGURES if k in r]
            breakdown += [
                f"{k} {r[k]:.1f}"
                for k in ("received_p50", "received_to_shown_ms_p50", "dropped")
                if k in r
            ]
            if breakdown:
                print(f"# {path} receiver, per frame: {', '.join(breakdown)}", file=sys.stderr)
            if path == "webrtc" and r["path"] != "WebRTC":
                print(f"# the page fell back to {r['path']}: not WebRTC", file=sys.stderr)
            line(f"e2e_{name}_fps_720p", r["fps"], "fps")
            line(f"e2e_{name}_glass_to_glass_p50", r["p50"], "ms")
            line(f"e2e_{name}_glass_to_glass_p90", r["p90"], "ms")
            if "shown_p50" in r:
                line(f"e2e_{name}_glass_to_glass_at_next_render_p50", r["shown_p50"], "ms")
            line(f"e2e_{name}_vroomd_cpu_per_client", r["cpu"], "cores")
            line(f"e2e_{name}_vroomd_and_driver_cpu_per_client", r["cpu_with_driver"], "cores")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        clock.close()
