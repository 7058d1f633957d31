"""VROOM-Graphical over WebRTC: H264 encoding, then end to end with real Chromiums.

    .venv/bin/python bench/webrtc_media.py            # everything
    .venv/bin/python bench/webrtc_media.py encode     # the encoder figures only

1. Encoding: 150 real screencast frames (JPEG, 1280x720, the agent page of
   bench/_media_pages.py: a clock row, a colour block, changing text) are
   decoded once, then encoded with aiortc's H264 encoder as aiortc
   configures it (x264 preset medium, zerolatency) and with vroomd's
   (`vroomd.media`, preset ultrafast, VBV): frames per second and the median
   time per frame, plus the JPEG decode vroomd adds: with the conversion to
   limited range (VP8) and without (H264, full range flagged in the stream).
2. End to end (see `e2e()`): a real vroomd, the agent's Chromium showing the
   clock page, and a person's Chromium on vroomd's page, over WebRTC and over
   the WebSocket JPEG path in the same run.

Each figure is printed as one `name value unit` line.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _media_pages import AGENT_PAGE, CHROMIUM_ARGS

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 720
FRAMES = int(os.environ.get("BENCH_MEDIA_FRAMES", "150"))


def line(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4g} {unit}", flush=True)


async def capture_frames(count: int) -> list[bytes]:
    """`count` screencast JPEGs of the animated agent page, as vroomd receives them."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        await page.set_content(AGENT_PAGE)
        cdp = await page.context.new_cdp_session(page)
        frames: list[bytes] = []
        acks: set[asyncio.Future[object]] = set()
        done = asyncio.get_running_loop().create_future()

        def on_frame(params: dict) -> None:
            ack = asyncio.ensure_future(
                cdp.send("Page.screencastFrameAck", {"sessionId": params["sessionId"]})
            )
            acks.add(ack)
            ack.add_done_callback(acks.discard)
            frames.append(base64.b64decode(params["data"]))
            if len(frames) >= count and not done.done():
                done.set_result(None)

        cdp.on("Page.screencastFrame", on_frame)
        await cdp.send(
            "Page.startScreencast",
            {"format": "jpeg", "quality": 70, "maxWidth": WIDTH, "maxHeight": HEIGHT},
        )
        await asyncio.wait_for(done, 60)
        await cdp.send("Page.stopScreencast")
        await browser.close()
    return frames[:count]


def encode_figures(jpegs: list[bytes]) -> None:
    from aiortc.codecs.h264 import H264Encoder as AiortcH264
    from vroomd.media import MediaConfig
    from vroomd.media.encoders import H264Encoder
    from vroomd.media.video import TIME_BASE, FrameConverter

    convert = FrameConverter((1920, 1200))
    decode_times = []
    frames = []
    for jpeg in jpegs:
        started = time.perf_counter()
        frame = convert(jpeg)
        decode_times.append(time.perf_counter() - started)
        assert frame is not None
        frames.append(frame)
    line("jpeg_decode_convert_720p_ms", 1000 * statistics.median(decode_times), "ms")
    # What the H264 path does: the JPEG's full-range YUV as it is, no conversion.
    keep = FrameConverter((1920, 1200), full_range=True)
    decode_times = []
    for jpeg in jpegs:
        started = time.perf_counter()
        keep(jpeg)
        decode_times.append(time.perf_counter() - started)
    line("jpeg_decode_full_range_720p_ms", 1000 * statistics.median(decode_times), "ms")

    for name, make in (
        ("aiortc", AiortcH264),
        ("vroomd", lambda: H264Encoder(MediaConfig())),
    ):
        encoder = make()
        times = []
        sizes = 0
        total_started = time.perf_counter()
        for i, frame in enumerate(frames):
            frame.pts = i * 3000
            frame.time_base = TIME_BASE
            started = time.perf_counter()
            payloads, _ = encoder.encode(frame, force_keyframe=(i == 0))
            times.append(time.perf_counter() - started)
            sizes += sum(len(p) for p in payloads)
        total = time.perf_counter() - total_started
        line(f"h264_encode_720p_fps_{name}", len(frames) / total, "fps")
        line(f"h264_encode_720p_ms_p50_{name}", 1000 * statistics.median(times), "ms")
        line(f"h264_encode_720p_kbit_per_frame_{name}", 8 * sizes / len(frames) / 1000, "kbit")


async def main(argv: list[str]) -> None:
    what = argv[1] if len(argv) > 1 else "all"
    if what in ("all", "encode"):
        jpegs = await capture_frames(FRAMES)
        encode_figures(jpegs)
    if what in ("all", "e2e"):
        from _media_e2e import e2e

        await e2e(line)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
