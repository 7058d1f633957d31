"""The agent's screen as an aiortc video track: newest frame, paced, never queued.

aiortc's sender loop is `frame = await track.recv()`, encode it (in a
thread), send its packets, repeat. `ScreenTrack.recv()` returns at most
`fps` frames a second and always the newest picture: the source holds one
frame, so while the encoder is busy every frame but the last is dropped and
a slow encoder lowers the frame rate instead of adding delay. JPEG frames
(Chromium's screencast) are decoded in the executor as they arrive, one at
a time and always the newest, beside the encoder of the previous frame.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.reformatter import ColorRange, VideoReformatter

from .config import MediaConfig

log = logging.getLogger("vroomd.media")

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
LIVE: weakref.WeakSet[ScreenTrack] = weakref.WeakSet()
"""Every `ScreenTrack` not yet garbage-collected (for leak checks)."""

MAX_JPEG_BYTES = 16 * 1024 * 1024
MAX_JPEG_SIDE = 8192
"""A JPEG larger than this (bytes, or pixels either way) is refused before decoding."""
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "rgb24", "bgr24", "rgba", "bgra"}


class FrameSource(Protocol):
    """A newest-frame-wins mailbox; the screencast's `FrameSlot` is one."""

    async def wait(self) -> bool:
        """Until a frame is waiting; False once the source is closed."""

    def take(self) -> bytes | av.VideoFrame | None:
        """The newest frame (JPEG bytes or a decoded frame), emptying the mailbox."""


class LatestFrame:
    """A `FrameSource` fed by `put()`: JPEG bytes or `av.VideoFrame`s."""

    __slots__ = ("_frame", "_waiter", "closed", "dropped", "put_count")

    def __init__(self) -> None:
        self._frame: bytes | av.VideoFrame | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.dropped = 0
        self.put_count = 0

    def put(self, frame: bytes | av.VideoFrame) -> None:
        if self.closed:
            return
        if self._frame is not None:
            self.dropped += 1
        self._frame = frame
        self.put_count += 1
        self._wake()

    async def wait(self) -> bool:
        while self._frame is None:
            if self.closed:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    def take(self) -> bytes | av.VideoFrame | None:
        frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        self.closed = True
        self._frame = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass(slots=True)
class TrackStats:
    taken: int = 0
    """Frames taken from the source (each one decoded and sent)."""
    sent: int = 0
    """Frames handed to the encoder, repeats included."""
    repeats: int = 0
    """Still-screen repeats of the last frame."""
    bad: int = 0
    """Source frames that did not decode (skipped)."""
    superseded: int = 0
    """Decoded frames replaced by a newer one before the encoder took them."""
    decode_seconds: float = 0.0
    paced_seconds: float = 0.0
    """Time `recv()` held a frame back to keep within `fps`."""
    width: int = 0
    height: int = 0


def fit(width: int, height: int, limit: tuple[int, int]) -> tuple[int, int]:
    """The largest even size within `limit` with `width:height`'s aspect (4:2:0 needs even)."""
    max_w, max_h = limit
    scale = min(1.0, max_w / width, max_h / height)
    w = max(2, int(width * scale) & ~1)
    h = max(2, int(height * scale) & ~1)
    return w, h


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, None if there is none.

    Read before decoding so that a frame's size is checked before the
    decoder allocates for it (a header can claim 65535x65535).
    """
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i = 2
    end = len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return None
        if marker in _SOF:
            if i + 9 > end or length < 7:
                return None
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return (width, height) if width and height else None
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


class FrameConverter:
    """JPEG bytes or any frame -> a limited-range yuv420p frame within the size limit.

    The screencast's JPEGs decode to full-range YUV, which an H264/VP8
    stream would have to flag; converting keeps every receiver's default
    (limited range) right, for ~0.7 ms at 720p.
    """

    def __init__(self, max_size: tuple[int, int]) -> None:
        self.max_size = max_size
        self._decoder: Any = None
        self._reformatter = VideoReformatter()

    def __call__(self, data: bytes | av.VideoFrame) -> av.VideoFrame | None:
        if isinstance(data, av.VideoFrame):
            frame = data
        else:
            size = jpeg_size(data) if len(data) <= MAX_JPEG_BYTES else None
            if size is None or max(size) > MAX_JPEG_SIDE:
                log.debug("video frame refused: not a JPEG of a sane size")
                return None
            if self._decoder is None:
                self._decoder = av.CodecContext.create("mjpeg", "r")
            try:
                frames = self._decoder.decode(av.Packet(data))
            except (av.FFmpegError, ValueError) as exc:
                log.debug("undecodable video frame: %s", exc)
                return None
            if not frames:
                return None
            frame = frames[-1]
        width, height = fit(frame.width, frame.height, self.max_size)
        full = frame.format.name in _FULL_RANGE_FORMATS or frame.color_range == ColorRange.JPEG
        if full:
            return self._reformatter.reformat(
                frame,
                width=width,
                height=height,
                format="yuv420p",
                src_color_range=ColorRange.JPEG,
                dst_color_range=ColorRange.MPEG,
            )
        if (width, height) == (frame.width, frame.height) and frame.format.name == "yuv420p":
            return frame
        return self._reformatter.reformat(frame, width=width, height=height, format="yuv420p")


class ScreenTrack(MediaStreamTrack):
    """A video track fed by a `FrameSource`, paced to `config.fps`."""

    kind = "video"

    def __init__(
        self, source: FrameSource | None = None, config: MediaConfig | None = None
    ) -> None:
        super().__init__()
        self.config = config or MediaConfig()
        self.source: FrameSource = source if source is not None else LatestFrame()
        self.stats = TrackStats()
        self._convert = FrameConverter(self.config.max_size)
        self._period = 1.0 / self.config.fps
        self._idle = 1.0 / self.config.idle_fps
        self._due = 0.0
        self._start: float | None = None
        self._last: av.VideoFrame | None = None
        self._last_pts = -1
        self._ready: av.VideoFrame | None = None
        """Decoded, not sent yet (a newer one replaces it)."""
        self._wake: asyncio.Future[None] | None = None
        """`recv()` waiting for a decoded frame."""
        self._ended = False
        self._decoder: asyncio.Task[None] | None = None
        self._idle_source: FrameSource | None = None
        """The source the decoder waits on, while it has nothing to decode."""
        LIVE.add(self)

    def set_source(self, source: FrameSource) -> None:
        """Switch to another source (another page, a new screencast); the
        next frame comes from it at once."""
        self.source = source
        decoder = self._decoder
        if self._idle_source is not None and decoder is not None and not decoder.done():
            # Waiting on the old source: wait on the new one instead. (Never
            # while decoding: the converter is not to be used by two threads.)
            decoder.cancel()
            self._idle_source = None
            self._decoder = asyncio.get_running_loop().create_task(
                self._decode(), name="vroomd-video-decode"
            )

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        if self._decoder is None and self.readyState == "live":
            self._decoder = loop.create_task(self._decode(), name="vroomd-video-decode")
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._ready is None and not self._ended:
                # A bare future, woken by the decoder or the idle timer: one
                # event-loop turn from a decoded frame to its encoding.
                wake = self._wake = loop.create_future()
                timer = (
                    loop.call_later(self._idle, _resolve, wake) if self._last is not None else None
                )
                try:
                    await wake
                finally:
                    self._wake = None
                    if timer is not None:
                        timer.cancel()
            delay = self._due - loop.time()
            if delay > 0:
                # Over the cap: hold the frame (a newer one replaces it meanwhile).
                self.stats.paced_seconds += delay
                await asyncio.sleep(delay)
            if self.readyState != "live":
                raise MediaStreamError
            if self._ready is not None:
                frame, self._ready = self._ready, None
                self._last = frame
            elif self._ended:
                self.stop()
                raise MediaStreamError
            elif self._last is not None:
                frame = self._last
                self.stats.repeats += 1
            else:
                continue
            now = loop.time()
            self._due = max(self._due, now - self._period) + self._period
            return self._stamp(frame, now)

    async def _decode(self) -> None:
        """Decode the newest source frame whenever one arrives, one at a time.

        Runs beside the encoder (both in aiortc's executor), so that a frame
        is decoded while the previous one is being encoded: two cores give
        twice the frame rate and half the delay of doing both in turn.
        """
        loop = asyncio.get_running_loop()
        stats = self.stats
        while self.readyState == "live":
            source = self.source
            data = source.take()
            if data is None:
                self._idle_source = source  # set_source() may cancel this wait
                try:
                    alive = await source.wait()
                finally:
                    self._idle_source = None
                if not alive and source is self.source:
                    self._ended = True  # closed and not replaced: the screen is gone
                    self._wakeup()
                    return
                continue
            started = time.perf_counter()
            frame = await loop.run_in_executor(None, self._convert, data)
            stats.decode_seconds += time.perf_counter() - started
            if frame is None:
                stats.bad += 1
                continue
            stats.taken += 1
            if self._ready is not None:
                stats.superseded += 1
            self._ready = frame
            self._wakeup()

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _stamp(self, frame: av.VideoFrame, now: float) -> av.VideoFrame:
        if self._start is None:
            self._start = now
        pts = max(round((now - self._start) * CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = TIME_BASE
        stats = self.stats
        stats.sent += 1
        stats.width, stats.height = frame.width, frame.height
        return frame

    def stop(self) -> None:
        super().stop()
        self._wakeup()
        if self._decoder is not None and not self._decoder.done():
            self._decoder.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def live_tracks() -> int:
    return sum(1 for track in LIVE if track.readyState == "live")
