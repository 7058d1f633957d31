"""VROOM-Graphical over WebSocket through a real vroomd (issue 6).

Phase 1, vroomd as a child process (`--no-auth --allow-evaluate`, loopback):
its agent Chromium renders an animated canvas that repaints the whole
1280x720 viewport every frame; a person's Chromium opens vroomd's page
(`/?transport=ws`, JPEG frames drawn on a canvas) for BENCH_SECONDS (default
8) and counts the frames it draws. Once a second the agent page paints a
solid mark colour and notes Date.now(); the person's page notes when it first
draws that colour: glass-to-glass = seen - painted (both browsers share this
machine's clock). CPU: vroomd's process, and vroomd plus its Playwright
driver (node, which relays the CDP screencast), as a share of one core.
Then input-to-screen: the person's page sends MOUSE_DOWN (interact mode), the
agent page paints a new solid colour at its next frame, and the person's
page times, on its own clock, until it draws that colour.

Phase 2, vroomd in this process (instrumented): input latency from a frame's
arrival in vroomd (the session's event tap) to the end of its dispatch into
the agent page (the CDP / Playwright call returned), over 1,000 events each:
mouse buttons (raw CDP `Input.dispatchMouseEvent`), keys (Playwright
`keyboard.down/up`), and mouse moves (sent pipelined; acknowledged by
Chromium at its next animation frame).

    .venv/bin/python bench/graphical_ws.py
"""

from __future__ import annotations

import asyncio
import http.server
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _proc import cpu_seconds, free_port

ROOT = Path(__file__).resolve().parents[1]
VROOMD = ROOT / ".venv" / "bin" / "vroomd"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# The agent's page: every animation frame repaints the whole viewport (text
# over a changing hue); once a second, and on every mousedown, one frame is a
# solid mark colour instead, its paint time kept in `marks`.
ANIM_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>anim</title>
<style>body{margin:0;overflow:hidden}canvas{display:block}</style></head><body>
<canvas id="c"></canvas><script>
const c = document.getElementById("c"), g = c.getContext("2d");
const fit = () => { c.width = innerWidth; c.height = innerHeight; };
fit(); addEventListener("resize", fit);
window.marks = []; let n = 0, mark = null, next = 1;
const colour = (i) => [[255, 0, 0], [0, 0, 255], [255, 0, 255], [0, 255, 255]][i % 4];
setInterval(() => { mark = { id: next++, kind: "tick" }; }, 250);
addEventListener("mousedown", () => { mark = { id: next++, kind: "click" }; });
function frame(t) {
  n++;
  if (mark) {
    const [r, gg, b] = colour(mark.id);
    g.fillStyle = `rgb(${r},${gg},${b})`;
    g.fillRect(0, 0, c.width, c.height);
    marks.push({ id: mark.id, kind: mark.kind, rgb: [r, gg, b], at: Date.now() });
    mark = null;
  } else {
    g.fillStyle = `hsl(${(n * 7) % 360} 40% 40%)`;
    g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = "#fff"; g.font = "40px sans-serif";
    for (let i = 0; i < 14; i++) g.fillText(`frame ${n} line ${i} ${t}`, 20, 50 + i * 50);
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
</script></body></html>"""

# Runs in the person's page: sample one pixel of every JPEG drawn.
PROBE_JS = """
(() => {
  window.bench = { drawn: 0, seen: [], clicks: [] };
  const near = (a, b) => Math.abs(a[0] - b[0]) < 40 && Math.abs(a[1] - b[1]) < 40
    && Math.abs(a[2] - b[2]) < 40;
  const solid = [[255, 0, 0], [0, 0, 255], [255, 0, 255], [0, 255, 255]];
  let last = null;
  window.vroom.onframe = (ctx) => {
    bench.drawn++;
    const p = ctx.getImageData(40, 700, 1, 1).data;
    const q = ctx.getImageData(1200, 20, 1, 1).data;
    const rgb = [p[0], p[1], p[2]];
    const hit = solid.find((s) => near(rgb, s) && near([q[0], q[1], q[2]], s));
    const key = hit ? hit.join(",") : null;
    if (hit && key !== last) {
      bench.seen.push({ rgb: hit, at: Date.now(), t: performance.now() });
      if (bench.waiting && key !== bench.waiting.from) {
        bench.clicks.push(performance.now() - bench.waiting.t0);
        bench.waiting = null;
      }
    }
    last = key;
  };
})();
"""


def line(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.3f} {unit}", flush=True)


def driver_of(pid: int) -> int | None:
    """Playwright's node driver among vroomd's children."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid and b"node" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def serve_page() -> tuple[http.server.HTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(ANIM_PAGE)))
            self.end_headers()
            self.wfile.write(ANIM_PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/anim.html"


# ------------------------------------------------------------------ phase 1


async def through_vroomd() -> None:
    from playwright.async_api import async_playwright

    page_server, anim = serve_page()
    port = free_port()
    state = tempfile.mkdtemp(prefix="vroomd-bench-")
    proc = subprocess.Popen(
        [
            str(VROOMD),
            "--listen",
            f"ws://127.0.0.1:{port}",
            "--no-auth",
            "--allow-evaluate",
            "--state-dir",
            state,
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        while "ready" not in (ready := proc.stderr.readline()):
            if not ready:
                raise RuntimeError("vroomd did not start")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            # bypass_csp: wait_for_function evaluates strings, which the page's CSP forbids.
            page = await browser.new_page(viewport={"width": 1700, "height": 900}, bypass_csp=True)
            await page.goto(f"http://127.0.0.1:{port}/?transport=ws")
            await page.wait_for_function("window.vroom.client && window.vroom.client.handshake")
            client = "window.vroom.client"
            await page.evaluate(f"{client}.setMode('interact')")
            await page.wait_for_function(f"{client}.mode === 'interact' && {client}.inputReady")
            await asyncio.sleep(0.6)  # the page's own first RESIZE (debounced) goes first
            await page.evaluate(f"{client}.resize(1280, 720)")
            await page.wait_for_function(f"{client}.agent.width === 1280")
            await page.evaluate(f"{client}.navigate({anim!r})")
            await page.wait_for_function(
                f"{client}.state && {client}.state.url === {anim!r} && !{client}.state.loading"
            )
            await page.evaluate(PROBE_JS)
            await asyncio.sleep(1.0)  # the screencast settles
            driver = driver_of(proc.pid)
            cpu0 = cpu_seconds(proc.pid)
            dcpu0 = cpu_seconds(driver) if driver else 0.0
            rendered = f"{client}.command('evaluate', {{expression: 'n'}}).then(r => r.data)"
            drawn0 = await page.evaluate("bench.drawn")
            got0 = await page.evaluate("window.vroom.stats.frames")
            rendered0 = await page.evaluate(rendered)
            start = time.perf_counter()
            await asyncio.sleep(SECONDS)
            wall = time.perf_counter() - start
            drawn = await page.evaluate("bench.drawn") - drawn0
            got = await page.evaluate("window.vroom.stats.frames") - got0
            rendered1 = await page.evaluate(rendered)
            cpu = cpu_seconds(proc.pid) - cpu0
            dcpu = (cpu_seconds(driver) - dcpu0) if driver else 0.0
            stats = await page.evaluate("window.vroom.stats")
            line("graphical_ws_fps_1280x720", drawn / wall, "fps")
            line("graphical_ws_received_fps", got / wall, "fps")
            line("graphical_ws_agent_render_fps", (rendered1 - rendered0) / wall, "fps")
            line("graphical_ws_vroomd_cpu", cpu / wall, "cores")
            line("graphical_ws_vroomd_and_driver_cpu", (cpu + dcpu) / wall, "cores")
            line("graphical_ws_frame_bytes", stats["bytes"] / max(1, stats["frames"]), "bytes")

            # Glass-to-glass: agent paint time of each tick mark -> first drawn.
            note = await page.evaluate(f"{client}.command('evaluate', {{expression: 'marks'}})")
            marks = note.get("data") or []
            seen = await page.evaluate("bench.seen")
            g2g = []
            for mark in marks:
                if mark["kind"] != "tick":
                    continue
                after = [s["at"] for s in seen if s["rgb"] == mark["rgb"] and s["at"] >= mark["at"]]
                if after and after[0] - mark["at"] < 2000:
                    g2g.append(after[0] - mark["at"])
            if g2g:
                line("graphical_ws_glass_to_glass_p50", statistics.median(g2g), "ms")

            # Input-to-screen: MOUSE_DOWN from the page -> its colour drawn there.
            await page.evaluate("bench.clicks = []")
            for _ in range(30):
                await page.evaluate(
                    """() => {
                    const n = bench.seen.length;
                    const last = n ? bench.seen[n - 1].rgb : [0, 0, 0];
                    bench.waiting = { from: last.join(','), t0: performance.now() };
                    window.vroom.client.mouseDown(640, 360, 0);
                    window.vroom.client.mouseUp(640, 360, 0);
                  }"""
                )
                await asyncio.sleep(0.35)
            clicks = await page.evaluate("bench.clicks")
            if clicks:
                line("graphical_ws_input_to_screen_p50", statistics.median(clicks), "ms")
            await browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        page_server.shutdown()


# ------------------------------------------------------------------ phase 2


async def dispatch_latency() -> None:
    """In-process: frame arrival in vroomd -> dispatch into the page done."""
    import openmux
    import openmux.aio as aio
    from vroom_graphical import (
        GraphicalClient,
        InputReady,
        StateReceived,
        Viewport,
        control_spec,
        parse_name,
    )
    from vroomd.daemon import Daemon, DaemonConfig
    from vroomd.graphical import input as vinput
    from vroomd.graphical import page as vpage

    arrivals: dict[int, float] = {}
    done: dict[int, float] = {}
    counter = iter(range(1 << 30))
    submit = vpage.Screen.submit
    handle = vinput.InputMapper.handle

    def timed_submit(self: Any, message: Any) -> bool:
        n = next(counter)
        arrivals[n] = time.perf_counter()
        return submit(self, (n, message))  # type: ignore[arg-type]

    async def timed_handle(self: Any, item: Any) -> None:
        n, message = item
        await handle(self, message)
        done[n] = time.perf_counter()

    vpage.Screen.submit = timed_submit  # type: ignore[method-assign]
    vinput.InputMapper.handle = timed_handle  # type: ignore[method-assign]
    server, _ = serve_page()
    blank = f"http://127.0.0.1:{server.server_address[1]}/"
    daemon = Daemon(DaemonConfig(token=None))
    url = (await daemon.listen("ws://127.0.0.1:0"))[0]
    session = await aio.connect(url, channels=[control_spec()])
    client = GraphicalClient(session.connection, viewport=Viewport(1280, 720))
    events: list[Any] = []
    changed = asyncio.Event()

    def tap(batch: list[openmux.Event]) -> list[openmux.Event]:
        rest: list[openmux.Event] = []
        for event in batch:
            name = None
            if isinstance(event, openmux.MessageReceived):
                channel = session.connection.channels.get(event.channel_id)
                name = channel.name if channel else None
            elif isinstance(event, openmux.ChannelOpened | openmux.ChannelClosed):
                name = event.channel.name
            elif isinstance(event, openmux.ChannelRejected):
                name = event.name
            if name is not None and parse_name(name) is not None:
                events.extend(client.handle_event(event))
                changed.set()
            else:
                rest.append(event)
        return rest

    session.add_event_tap(tap)
    # the control channel was granted in HELLO, before the tap: take it back
    for channel in list(session.connection.channels.values()):
        if parse_name(channel.name) is not None:
            for message in session.detach_channel(channel.id):
                event = openmux.MessageReceived(channel.id, message.type, message.data)
                events.extend(client.handle_event(event))
    session.flush()

    async def until(kind: type, pred: Any = lambda e: True) -> None:
        async with asyncio.timeout(30):
            while not any(isinstance(e, kind) and pred(e) for e in events):
                changed.clear()
                await changed.wait()

    await until(StateReceived, lambda e: e.state.url is not None)
    client.set_mode("interact")
    session.flush()
    await until(InputReady)
    client.navigate(blank)
    session.flush()
    await until(StateReceived, lambda e: e.state.url == blank and e.state.loading is False)

    async def run(name: str, send: Any) -> None:
        arrivals.clear()
        done.clear()
        for i in range(EVENTS):
            send(i)
            session.flush()
            await asyncio.sleep(0.004)  # paced: latency, not queueing
        async with asyncio.timeout(30):
            while len(done) < len(arrivals) or len(arrivals) < EVENTS:
                await asyncio.sleep(0.01)
        lat = sorted((done[n] - arrivals[n]) * 1000 for n in arrivals)
        line(f"graphical_input_{name}_p50", statistics.median(lat), "ms")
        line(f"graphical_input_{name}_p99", lat[int(len(lat) * 0.99) - 1], "ms")

    await run(
        "button",
        lambda i: (client.mouse_down if i % 2 == 0 else client.mouse_up)(640, 360),
    )
    await run(
        "key",
        lambda i: (client.key_down if i % 2 == 0 else client.key_up)("a", "KeyA", 0),
    )

    # Moves are pipelined: sent when the one in flight is acknowledged
    # (Chromium acknowledges at its next frame), newest position first.
    sent: list[float] = []
    acked: list[float] = []
    send_move = vinput.InputMapper._send_move
    move_done = vinput.InputMapper._move_done

    def timed_send_move(self: Any) -> None:
        sent.append(time.perf_counter())
        send_move(self)

    def timed_move_done(self: Any, future: Any) -> None:
        if future is self._move:
            acked.append(time.perf_counter())
        move_done(self, future)

    vinput.InputMapper._send_move = timed_send_move  # type: ignore[method-assign]
    vinput.InputMapper._move_done = timed_move_done  # type: ignore[method-assign]
    arrivals.clear()
    for i in range(EVENTS):
        client.mouse_move(100 + i % 500, 200 + i % 300)
        session.flush()
        await asyncio.sleep(0.004)
    await asyncio.sleep(0.2)
    arrive = sorted(arrivals.values())
    waits, j = [], 0
    for t in sent:  # arrival of the newest position a send carried -> the send
        while j + 1 < len(arrive) and arrive[j + 1] <= t:
            j += 1
        waits.append((t - arrive[j]) * 1000)
    line("graphical_input_move_sent_p50", statistics.median(waits), "ms")
    line("graphical_input_move_coalesced", 1 - len(sent) / len(arrive), "fraction")
    line(
        "graphical_input_move_ack_p50",
        statistics.median((a - s) * 1000 for s, a in zip(sent, acked, strict=False)),
        "ms",
    )
    await session.close()
    await daemon.close()
    server.shutdown()


async def main() -> None:
    if not os.path.exists(CHROMIUM):
        sys.exit(f"needs {CHROMIUM}")
    await through_vroomd()
    await dispatch_latency()


if __name__ == "__main__":
    asyncio.run(main())
