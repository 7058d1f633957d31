"""vroomd.media against a real Chromium: video, codecs, resize, audio both ways, release."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from vroomd.graphical.screencast import FrameSlot, Screencast
from vroomd.media import LevelMeter, MediaConfig, playout

from .webrtc_harness import (
    AGENT_PAGE,
    GREY,
    GREY_BOX,
    MAGENTA_BOX,
    Agent,
    answer,
    eventually,
    open_person,
    rtp_extensions,
    settled_resources,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def video_stats(person: Any) -> dict[str, Any] | None:
    stats = await person.evaluate("rtc.stats()")
    return stats["video"]


async def test_h264_video_of_the_agent_screen(browser: Any) -> None:
    agent = await Agent.open(browser)
    person = await open_person(browser)
    pc, media = await answer(person)
    # Chromium offers the playout-delay extension: the answer takes it with
    # the offer's id, and every video packet carries min = max = 0.
    offer = await person.evaluate("rtc.pc.localDescription.sdp")
    ext_id = _extmap_id(offer, playout.URI)
    assert ext_id is not None and _extmap_id(pc.localDescription.sdp, playout.URI) == ext_id
    packets = _record_video_packets(media)
    agent.sinks.append(media.frames.put)
    try:
        await eventually(lambda: person.evaluate("rtc.stats().then(s => s.state === 'connected')"))
        first = await eventually(lambda: _decoded(person, 1))
        later = await eventually(lambda: _decoded(person, first["framesDecoded"] + 30))
        assert later["codec"] == "video/H264"
        assert media.codec == "H264"
        assert (later["width"], later["height"]) == (1280, 720)
        x, y, w, h = MAGENTA_BOX
        centre = [x + w // 2, y + h // 2]

        seen: list[Any] = []

        async def magenta() -> bool:
            # x264 refines a still picture over the next frames: the first
            # decoded ones at a low starting bitrate can be ~40 levels off.
            pixel = await person.evaluate("([x, y]) => rtc.pixel(x, y)", centre)
            seen.append(pixel)
            return pixel is not None and _near(pixel, (255, 0, 255))

        try:
            await eventually(magenta, timeout=10)
        except AssertionError:
            raise AssertionError(f"pixels read: {seen[:3]} ... {seen[-3:]}") from None
        # The stream is full range (the screencast's JPEGs as they are) and
        # says so: a receiver reading it as limited range would show ~242.
        gx, gy, gw, gh = GREY_BOX
        grey = await person.evaluate("([x, y]) => rtc.pixel(x, y)", [gx + gw // 2, gy + gh // 2])
        assert grey is not None and _near(grey, GREY, tolerance=8), grey
        # Chromium's receiver estimate (REMB) reaches the encoder, within our bounds.
        await eventually(lambda: media.encoder.remb, timeout=20)
        config = media.config
        assert config.min_bitrate <= media.encoder.bitrate <= config.max_bitrate
        assert media.video.stats.sent >= media.encoder.frames > 0
        assert packets and all(
            dict(rtp_extensions(packet)).get(ext_id) == b"\x00\x00\x00" for packet in packets
        )
    finally:
        agent.sinks.clear()
        await person.close()
        await pc.close()
        await agent.close()
    await media.closed


async def test_vp8_when_the_browser_offers_no_h264(browser: Any) -> None:
    agent = await Agent.open(browser, 640, 360)
    person = await open_person(browser)
    pc, media = await answer(person, MediaConfig(playout_delay=None), noH264=True)
    packets = _record_video_packets(media)
    agent.sinks.append(media.frames.put)
    try:
        stats = await eventually(lambda: _decoded(person, 10))
        # playout_delay=None: the browser's own jitter buffer, no extension.
        assert _extmap_id(pc.localDescription.sdp, playout.URI) is None
        assert packets and all(len(rtp_extensions(p)) == 2 for p in packets)  # mid, abs-send-time
        assert stats["codec"] == "video/VP8"
        assert media.codec == "VP8"
        assert (stats["width"], stats["height"]) == (640, 360)
    finally:
        await person.close()
        await pc.close()
        await agent.close()


async def test_resolution_follows_the_agent_viewport(browser: Any) -> None:
    agent = await Agent.open(browser)
    person = await open_person(browser)
    pc, media = await answer(person)
    agent.sinks.append(media.frames.put)
    try:
        await eventually(lambda: _size(person, (1280, 720)))
        await agent.resize(800, 600)
        await eventually(lambda: _size(person, (800, 600)))
        assert media.encoder.restarts >= 1
    finally:
        await person.close()
        await pc.close()
        await agent.close()


async def test_frames_larger_than_the_limit_are_scaled_down(browser: Any) -> None:
    agent = await Agent.open(browser)
    person = await open_person(browser)
    pc, media = await answer(person, MediaConfig(max_size=(640, 640)))
    agent.sinks.append(media.frames.put)
    try:
        await eventually(lambda: _size(person, (640, 360)))
    finally:
        await person.close()
        await pc.close()
        await agent.close()


async def test_audio_out_and_microphone_in(browser: Any) -> None:
    person = await open_person(browser)
    voice = LevelMeter(echo=False)
    pc, media = await answer(person, voice=voice, mic=True)
    try:
        assert voice.started
        # Silence flows before the agent says anything: the track never starves.
        await eventually(lambda: _audio(person, lambda a: a["packets"] > 20))
        # Chromium's fake microphone (a beep) reaches the pipeline, resampled to 16 kHz.
        await eventually(lambda: voice.seconds > 1.0 and voice.peak_dbfs > -40)
        assert media.microphone is not None and media.microphone.frames > 0
        # The agent speaks: a 440 Hz tone becomes audible energy in the page.
        assert media.speaker is not None
        before = (await person.evaluate("rtc.stats()"))["audio"]["energy"]
        media.speaker.play(_tone(440, 1.0, 24_000), 24_000)
        assert media.speaker.speaking
        await eventually(lambda: _audio(person, lambda a: a["energy"] > before + 0.01))
        await eventually(lambda: not media.speaker.speaking)
        assert media.speaker.spoken_frames >= 45
    finally:
        await person.close()
        await pc.close()
    await media.closed
    assert voice.stopped


async def test_connections_leave_nothing_behind(browser: Any) -> None:
    """Eight cycles here (both ways of hanging up); vroomd's test does twenty."""
    agent = await Agent.open(browser, 640, 360)
    baseline = len(asyncio.all_tasks())
    voices = []
    try:
        for i in range(8):
            person = await open_person(browser)
            voice = LevelMeter()
            voices.append(voice)
            pc, media = await answer(person, voice=voice, mic=True)
            agent.sinks.append(media.frames.put)
            await eventually(lambda page=person: _decoded(page, 2))
            agent.sinks.remove(media.frames.put)
            if i % 2:
                await person.close()  # the page goes away: ICE/DTLS notice it
                await pc.close()
            else:
                await person.evaluate("rtc.close()")
                await pc.close()
                await person.close()
            await media.closed
            del pc, media
        left = await settled_resources(baseline)
        assert left["encoders"] == 0 and left["video_tracks"] == 0 and left["audio"] == 0
        assert all(v.stopped for v in voices)
    finally:
        await agent.close()


# ------------------------------------------------------------------ helpers


async def _decoded(person: Any, at_least: int) -> dict[str, Any] | None:
    stats = await video_stats(person)
    return stats if stats and stats["framesDecoded"] >= at_least else None


async def _size(person: Any, size: tuple[int, int]) -> bool:
    stats = await video_stats(person)
    return bool(stats) and (stats["width"], stats["height"]) == size


async def _audio(person: Any, check: Any) -> bool:
    stats = (await person.evaluate("rtc.stats()"))["audio"]
    return bool(stats) and check(stats)


def _near(pixel: list[int], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def _tone(freq: float, seconds: float, rate: int) -> bytes:
    from array import array

    samples = array(
        "h",
        (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds))),
    )
    return samples.tobytes()


def _extmap_id(sdp: str, uri: str) -> int | None:
    """The id of `uri` in the video m-line of `sdp`."""
    video = sdp.split("m=video", 1)[1].split("\nm=", 1)[0]
    for line in video.splitlines():
        if line.startswith("a=extmap:") and line.split()[1] == uri:
            return int(line[len("a=extmap:") :].split()[0].split("/")[0])
    return None


def _record_video_packets(media: Any, keep: int = 200) -> list[bytes]:
    """The plain RTP packets of the video sender (before SRTP), the first `keep`."""
    sender = media.video_transceiver.sender
    transport = sender.transport
    original = transport._send_rtp
    packets: list[bytes] = []

    async def send_rtp(data: bytes) -> None:
        if len(packets) < keep and int.from_bytes(data[8:12], "big") == sender._ssrc:
            packets.append(bytes(data))
        await original(data)

    transport._send_rtp = send_rtp
    return packets


async def test_a_refused_screencast_start_is_retried(browser: Any) -> None:
    """Chromium sometimes refuses `Page.startScreencast` on a page that is not
    attached yet ("Not attached to an active page"): the viewers then got no
    frame at all (a person's video stayed black). The start is retried."""
    page = await browser.new_page(viewport={"width": 320, "height": 240})
    await page.set_content(AGENT_PAGE)
    cdp = await page.context.new_cdp_session(page)
    real_send, refused = cdp.send, []

    async def send(method: str, params: Any = None) -> Any:
        if method == "Page.startScreencast" and len(refused) < 2:
            refused.append(method)
            raise RuntimeError(f"Protocol error ({method}): Not attached to an active page")
        return await real_send(method, params)

    cdp.send = send
    errors: list[BaseException] = []
    screencast = Screencast(cdp, max_size=(320, 240), on_error=errors.append)
    slot = FrameSlot()
    try:
        screencast.add(slot)
        assert await asyncio.wait_for(slot.wait(), 20)
        frame = slot.take()
        assert frame is not None and frame.startswith(b"\xff\xd8")
        assert len(refused) == 2 and not errors
    finally:
        screencast.close()
        await page.close()
