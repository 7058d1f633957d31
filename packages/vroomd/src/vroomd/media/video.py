"""The agent's screen as an aiortc video track: newest frame, paced, never queued.

aiortc's sender loop is `frame = await track.recv()`, encode it (in a
thread), send its packets, repeat. `ScreenTrack.recv()` returns at most
`fps` frames a second and always the newest picture: the source holds one
frame, so while the encoder is busy every frame but the last is dropped and
a slow encoder lowers the frame rate instead of adding delay.

With an encoder bound (`bind_encoder`, which `encoders.install` does for a
peer's sender), `recv()` decodes the JPEG and encodes it in ONE executor
job and hands the sender the finished packets (`Encoded`), which aiortc
sends without a thread hop of its own: one hand-off between threads per
frame instead of two, and the frame taken is the newest at that moment. On
a loaded machine each hand-off costs a scheduling delay; this is the part
of the WebRTC path's latency that the WebSocket JPEG path does not have.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.reformatter import ColorRange, VideoReformatter

from ..graphical.screencast import FrameSlot
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

    closed: bool
    listener: Callable[[], None] | None
    """Called on every put and on close (the track waits with it)."""

    def take(self) -> bytes | av.VideoFrame | None:
        """The newest frame (JPEG bytes or a decoded frame), emptying the mailbox."""


class LatestFrame(FrameSlot):
    """A `FrameSource` fed by `put()`: JPEG bytes or `av.VideoFrame`s."""

    __slots__ = ()


@dataclass(slots=True)
class Encoded:
    """A frame already encoded by the track: what the sender's encoder `pack()`s."""

    payloads: list[bytes]
    timestamp: int


@dataclass(slots=True)
class TrackStats:
    taken: int = 0
    """Frames taken from the source and decoded."""
    sent: int = 0
    """Frames handed to the encoder, repeats included."""
    repeats: int = 0
    """Still-screen repeats of the last frame."""
    bad: int = 0
    """Source frames that did not decode (skipped)."""
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0
    """Time spent encoding in `recv()` (with a bound encoder)."""
    paced_seconds: float = 0.0
    """Time `recv()` waited to keep within `fps`."""
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
    """JPEG bytes or any frame -> 4:2:0 YUV within the size limit.

    Limited range (`yuv420p`) by default, every receiver's default. With
    `full_range` (for H264, whose stream flags its range in the VUI, which
    browsers honour) the screencast's JPEGs, full-range `yuvj420p` when
    decoded, go to the encoder as they are: ~0.6 ms and a fifth of the
    conversion's CPU saved per 720p frame. VP8 has no such flag.
    """

    def __init__(self, max_size: tuple[int, int], *, full_range: bool = False) -> None:
        self.max_size = max_size
        self.full_range = full_range
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
        target, target_range = (
            ("yuvj420p", ColorRange.JPEG) if self.full_range else ("yuv420p", ColorRange.MPEG)
        )
        if (width, height) == (frame.width, frame.height) and frame.format.name == target:
            return frame
        return self._reformatter.reformat(
            frame,
            width=width,
            height=height,
            format=target,
            src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
            dst_color_range=target_range,
        )


class ScreenTrack(MediaStreamTrack):
    """A video track fed by a `FrameSource`, paced to `config.fps`."""

    kind = "video"

    def __init__(
        self, source: FrameSource | None = None, config: MediaConfig | None = None
    ) -> None:
        super().__init__()
        self.config = config or MediaConfig()
        self.stats = TrackStats()
        self._convert = FrameConverter(self.config.max_size)
        self._period = 1.0 / self.config.fps
        self._idle = 1.0 / self.config.idle_fps
        self._due = 0.0
        self._start: float | None = None
        self._last: av.VideoFrame | None = None
        self._last_pts = -1
        self._wake: asyncio.Future[None] | None = None
        """`recv()` waiting for the source (woken by its listener or `stop()`)."""
        self._encoder: Any = None
        self._keyframe: Callable[[], bool] | None = None
        self.source: FrameSource = LatestFrame()
        self.set_source(source if source is not None else self.source)
        LIVE.add(self)

    def set_source(self, source: FrameSource) -> None:
        """Switch to another source (another page, a new screencast); the
        next frame comes from it at once."""
        if self.source.listener == self._wakeup:
            self.source.listener = None
        self.source = source
        source.listener = self._wakeup
        self._wakeup()

    def bind_encoder(self, encoder: Any, keyframe_requested: Callable[[], bool]) -> None:
        """Encode in `recv()` with `encoder` (its `encode(frame, force_keyframe)`
        returns `(payloads, timestamp)`) and return `Encoded` frames;
        `keyframe_requested()` says (and forgets) whether the receiver asked
        for a keyframe since the last call."""
        self._encoder = encoder
        self._keyframe = keyframe_requested
        self._convert.full_range = bool(getattr(encoder, "full_range", False))

    async def recv(self) -> Any:
        """The next frame: an `av.VideoFrame`, or `Encoded` once an encoder is bound."""
        loop = asyncio.get_running_loop()
        stats = self.stats
        waited_since: float | None = None
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            delay = self._due - loop.time()
            if delay > 0:
                # Over the cap: nothing is taken before it may go out, so the
                # frame taken after the pause is the newest one.
                stats.paced_seconds += delay
                await asyncio.sleep(delay)
                continue
            source = self.source
            data = source.take()
            if data is None:
                if source.closed:
                    self.stop()
                    raise MediaStreamError  # closed and not replaced: the screen is gone
                now = loop.time()
                if waited_since is None:
                    waited_since = now
                if self._last is None or now - waited_since < self._idle:
                    await self._sleep(None if self._last is None else waited_since + self._idle)
                    continue
                stats.repeats += 1  # a still screen: the last frame again
            else:
                stats.taken += 1
            now = loop.time()
            force = self._keyframe() if self._keyframe is not None else False
            out = await loop.run_in_executor(None, self._produce, data, now, self._encoder, force)
            if out is None:
                stats.bad += 1
                continue
            self._due = max(self._due, now - self._period) + self._period
            return out

    async def _sleep(self, until: float | None) -> None:
        """Until the source has news, `stop()`, or the loop time `until`."""
        loop = asyncio.get_running_loop()
        wake = self._wake = loop.create_future()
        timer = loop.call_at(until, _resolve, wake) if until is not None else None
        try:
            await wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    def _produce(
        self, data: bytes | av.VideoFrame | None, now: float, encoder: Any, force: bool
    ) -> Any:
        """Executor job: decode (unless repeating), stamp, and encode if bound."""
        started = time.perf_counter()
        if data is None:
            frame = self._last
        else:
            frame = self._convert(data)
            self.stats.decode_seconds += time.perf_counter() - started
            if frame is None:
                return None
            self._last = frame
        assert frame is not None
        self._stamp(frame, now)
        if encoder is None:
            return frame
        started = time.perf_counter()
        payloads, timestamp = encoder.encode(frame, force)
        self.stats.encode_seconds += time.perf_counter() - started
        return Encoded(payloads, timestamp)

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
        if self.source.listener == self._wakeup:
            self.source.listener = None
        self._encoder = self._keyframe = None  # the sender's, not ours to keep alive
        self._wakeup()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def live_tracks() -> int:
    return sum(1 for track in LIVE if track.readyState == "live")
