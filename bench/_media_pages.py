"""Pages and helpers shared by bench/webrtc_media.py and tests/vroomd_webrtc.

The agent page shows, every animation frame, the wall-clock time (ms, low
24 bits) as a row of 24 black/white blocks, a fixed magenta block for pixel
checks, and a paragraph of changing text so the encoder sees screen-like
content. A viewer reads the blocks back from the pixels it shows: both
browsers run on one machine with one clock, so `Date.now() - code` is the
glass-to-glass latency of that frame.
"""

from __future__ import annotations

BITS = 24
BLOCK = 32
"""Block size in CSS pixels: large enough to survive 4:2:0 and a low bitrate."""
TOP = 96
MAGENTA = (255, 0, 255)
MAGENTA_BOX = (900, 400, 200, 120)  # x, y, width, height (CSS px in a 1280x720 viewport)
GREY = (224, 224, 224)
GREY_BOX = (900, 540, 200, 120)
"""A light grey: 18 levels off if a receiver got the video's colour range wrong."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

AGENT_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>clock</title>
<style>
 body {{ margin:0; background:#fff; font: 16px/1.4 monospace; overflow:hidden; }}
 #bits {{ position:absolute; left:0; top:{TOP}px; height:{BLOCK}px; display:flex; }}
 #bits div {{ width:{BLOCK}px; height:{BLOCK}px; }}
 #magenta {{ position:absolute; left:{MAGENTA_BOX[0]}px; top:{MAGENTA_BOX[1]}px;
   width:{MAGENTA_BOX[2]}px; height:{MAGENTA_BOX[3]}px; background:rgb(255,0,255); }}
 #grey {{ position:absolute; left:{GREY_BOX[0]}px; top:{GREY_BOX[1]}px;
   width:{GREY_BOX[2]}px; height:{GREY_BOX[3]}px; background:rgb{GREY}; }}
 #text {{ position:absolute; left:8px; top:{TOP + BLOCK + 24}px; width:860px; color:#222; }}
</style></head><body>
<div id="bits"></div><div id="magenta"></div><div id="grey"></div><div id="text"></div>
<script>
const bits = document.getElementById("bits");
const cells = [];
for (let i = 0; i < {BITS}; i++) {{
  const d = document.createElement("div");
  bits.appendChild(d);
  cells.push(d);
}}
const text = document.getElementById("text");
const words = "the agent edits code while the person watches over webrtc and websocket".split(" ");
let n = 0;
function tick() {{
  const code = Date.now() & 0xffffff;
  for (let i = 0; i < {BITS}; i++) {{
    cells[i].style.background = (code >> ({BITS - 1} - i)) & 1 ? "#000" : "#fff";
  }}
  n++;
  if (n % 2 === 0) {{
    const line = [];
    for (let i = 0; i < 14; i++) line.push(words[(n + i * 7) % words.length]);
    const rows = Array.from({{length: 22}}, (_, k) => `${{(n + k) % 1000}}: ${{line.join(" ")}}`);
    text.textContent = rows.join("\\n");
    text.style.whiteSpace = "pre";
  }}
  requestAnimationFrame(tick);
}}
requestAnimationFrame(tick);
</script></body></html>"""

DECODE_JS = f"""
// Reads the clock blocks of the agent's page from pixels, 1280 CSS px wide at `scale` 1.
function readClock(ctx, scale, ox = 0, oy = 0) {{
  let code = 0;
  for (let i = 0; i < {BITS}; i++) {{
    const x = Math.round(({BLOCK} * i + {BLOCK} / 2) * scale) - ox;
    const y = Math.round(({TOP} + {BLOCK} / 2) * scale) - oy;
    const p = ctx.getImageData(x, y, 1, 1).data;
    code = (code << 1) | ((p[0] + p[1] + p[2]) / 3 < 128 ? 1 : 0);
  }}
  return code;
}}
function latencyOf(code) {{
  return ((Date.now() & 0xffffff) - code + 0x1000000) % 0x1000000;
}}
"""

CLOCK_ROW = (0, TOP, BITS * BLOCK, BLOCK)
"""x, y, width, height of the clock blocks (CSS px at 1280 wide)."""
