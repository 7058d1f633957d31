"""aiortc's video encoders with our bitrate bounds, our x264 settings and a tally.

aiortc creates a sender's encoder itself, from the negotiated codec, the
first time the track yields a frame, and lets REMB (the receiver's
estimated maximum bitrate, RTCP PSFB/APP) set its `target_bitrate`, clamped
to module-wide constants (H264: 0.5-3 Mbps, VP8: 0.25-1.5 Mbps). It has no
API to choose the encoder, so `install()` wraps one sender's `send()` (which
receives the negotiated codec) and hands the sender ours before its first
frame; aiortc only builds its own when none is set.

`install()` also binds the encoder to the sender's `ScreenTrack`, which
then encodes each frame in the same executor job that decodes it and hands
the sender `Encoded` packets; the encoders' `pack()` passes them through.
aiortc tracks a receiver's keyframe request (PLI/FIR) in the sender's
private `__force_keyframe` flag and only gives it to `encode()` calls it
makes itself, so `keyframe_requested()` reads and clears that flag
(aiortc is pinned below 1.17 for this and for `__encoder`).

Both encoders restart the codec (a keyframe) whenever the target moves by
more than 10 %, and Chromium's REMB moves all the time while it ramps up:
`BitrateGovernor` only passes a change that is large enough and not too
soon after the previous one.
"""

from __future__ import annotations

import fractions
import logging
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCRtpCodecParameters, RTCRtpSender
from aiortc.codecs import h264, vpx

from .config import MediaConfig
from .video import Encoded

log = logging.getLogger("vroomd.media")

LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every encoder not yet garbage-collected (for leak checks)."""


@dataclass(slots=True)
class EncoderStats:
    """What one sender's encoder did; read from the event loop, written from aiortc's executor."""

    codec: str = ""
    frames: int = 0
    keyframes: int = 0
    restarts: int = 0
    seconds: float = 0.0
    """Wall time spent encoding (the executor thread's, so CPU on a free core)."""
    bytes: int = 0
    width: int = 0
    height: int = 0
    bitrate: int = 0
    """The current target, bits per second."""
    remb: list[tuple[float, int]] = field(default_factory=list)
    """The last receiver estimates (monotonic time, bps), newest last, at most 32."""

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0


class BitrateGovernor:
    """Turns receiver estimates into few, bounded target changes."""

    def __init__(self, config: MediaConfig, stats: EncoderStats) -> None:
        self.low, self.high = config.min_bitrate, config.max_bitrate
        self.hysteresis = config.bitrate_hysteresis
        self.interval = config.bitrate_interval
        self.step_up = config.bitrate_step_up
        self.stats = stats
        self.value = config.start_bitrate
        stats.bitrate = self.value
        self._changed = -float("inf")

    def propose(self, bitrate: int, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        remb = self.stats.remb
        remb.append((now, bitrate))
        del remb[:-32]
        target = max(self.low, min(int(bitrate), self.high))
        since = now - self._changed
        if target < self.value:
            change = self.value - target > self.hysteresis * self.value and since >= self.interval
        else:
            change = (
                target - self.value > self.step_up * self.value and since >= 3 * self.interval
            ) or (target == self.high != self.value and since >= 3 * self.interval)
        if change:
            log.debug("video bitrate %d -> %d bps (estimate %d)", self.value, target, bitrate)
            self.value = target
            self.stats.bitrate = target
            self._changed = now
        return self.value


def h264_level(width: int, height: int) -> str:
    """The lowest H.264 level whose frame size fits (level 3.1 is aiortc's SDP default)."""
    macroblocks = ((width + 15) // 16) * ((height + 15) // 16)
    if macroblocks <= 3600:
        return "31"
    if macroblocks <= 8192:
        return "40"
    return "51"


class _PassEncoded:
    """`pack()` of frames the track has already encoded with this encoder."""

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        if isinstance(packet, Encoded):
            return packet.payloads, packet.timestamp
        return super().pack(packet)  # type: ignore[misc, no-any-return]


class H264Encoder(_PassEncoded, h264.H264Encoder):
    """aiortc's packetizer, our x264 configuration and bounds."""

    full_range = True
    """Takes full-range `yuvj420p` as it comes (the stream says so in its VUI)."""

    def __init__(self, config: MediaConfig, stats: EncoderStats | None = None) -> None:
        super().__init__()
        self.config = config
        self.stats = stats if stats is not None else EncoderStats()
        self.stats.codec = "H264"
        self.governor = BitrateGovernor(config, self.stats)
        self._opened_at = 0
        self._format = ""
        LIVE.add(self)

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        return self.governor.value

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.governor.propose(bitrate)

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
        stats, target = self.stats, self.governor.value
        if self.codec is not None and (
            frame.width != self.codec.width
            or frame.height != self.codec.height
            or target != self._opened_at
            or frame.format.name != self._format
        ):
            log.debug(
                "x264 restart: %dx%d %s %d bps -> %dx%d %s %d bps",
                self.codec.width,
                self.codec.height,
                self._format,
                self._opened_at,
                frame.width,
                frame.height,
                frame.format.name,
                target,
            )
            self.buffer_data = b""
            self.buffer_pts = None
            self.codec = None
            stats.restarts += 1
        frame.pict_type = (
            av.video.frame.PictureType.I if force_keyframe else av.video.frame.PictureType.NONE
        )
        if self.codec is None:
            # libx264 keeps the rate in kbit/s: compare with what we asked for.
            self._opened_at = target
            self._format = frame.format.name
            self.codec = self._open(frame.width, frame.height, target, self._format)
            stats.width, stats.height = frame.width, frame.height
        started = time.perf_counter()
        data = b"".join(bytes(packet) for packet in self.codec.encode(frame))
        stats.seconds += time.perf_counter() - started
        stats.frames += 1
        stats.bytes += len(data)
        if force_keyframe:
            stats.keyframes += 1
        if data:
            yield from self._split_bitstream(data)

    def _open(self, width: int, height: int, bitrate: int, pix_fmt: str = "yuv420p") -> Any:
        config = self.config
        fps = round(config.fps)
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = pix_fmt  # yuvj420p: libx264 flags the full range in the VUI
        codec.bit_rate = bitrate
        codec.framerate = fractions.Fraction(fps, 1)
        codec.time_base = fractions.Fraction(1, fps)
        codec.gop_size = max(1, round(config.keyframe_interval * config.fps))
        codec.options = {
            "preset": config.h264_preset,
            "tune": "zerolatency",
            "level": h264_level(width, height),
            # A VBV of one second: no burst the link cannot take.
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
        }
        codec.profile = "Baseline"
        return codec


class Vp8Encoder(_PassEncoded, vpx.Vp8Encoder):
    """aiortc's VP8 encoder with our bounds (for clients without H264)."""

    def __init__(self, config: MediaConfig, stats: EncoderStats | None = None) -> None:
        super().__init__()
        self.config = config
        self.stats = stats if stats is not None else EncoderStats()
        self.stats.codec = "VP8"
        self.governor = BitrateGovernor(config, self.stats)
        self._sync()
        LIVE.add(self)

    def _sync(self) -> None:
        # aiortc's encode() reads its private copy for the rate-control buffer.
        self._Vp8Encoder__target_bitrate = self.governor.value

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        return self.governor.value

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.governor.propose(bitrate)
        self._sync()

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        stats = self.stats
        codec_before = self.codec
        started = time.perf_counter()
        result = super().encode(frame, force_keyframe)
        stats.seconds += time.perf_counter() - started
        stats.frames += 1
        stats.bytes += sum(len(p) for p in result[0])
        if force_keyframe:
            stats.keyframes += 1
        if codec_before is not None and self.codec is not codec_before:
            stats.restarts += 1
        if self.codec is not None:
            stats.width, stats.height = self.codec.width, self.codec.height
        return result


def encoder_for(
    codec: RTCRtpCodecParameters, config: MediaConfig, stats: EncoderStats | None = None
) -> H264Encoder | Vp8Encoder | None:
    name = codec.mimeType.lower()
    if name == "video/h264":
        return H264Encoder(config, stats)
    if name == "video/vp8":
        return Vp8Encoder(config, stats)
    return None


def install(sender: RTCRtpSender, config: MediaConfig, stats: EncoderStats) -> None:
    """Give `sender` our encoder for whatever codec gets negotiated."""
    original = sender.send

    async def send(parameters: Any) -> None:
        if parameters.codecs and getattr(sender, "_RTCRtpSender__encoder", "?") is None:
            encoder = encoder_for(parameters.codecs[0], config, stats)
            if encoder is not None:
                sender._RTCRtpSender__encoder = encoder  # type: ignore[attr-defined]
                bind = getattr(sender.track, "bind_encoder", None)
                if bind is not None:
                    bind(encoder, lambda: keyframe_requested(sender))
        await original(parameters)

    sender.send = send  # type: ignore[method-assign]


def keyframe_requested(sender: RTCRtpSender) -> bool:
    """Whether the receiver asked for a keyframe since the last call (and forget it)."""
    requested = bool(getattr(sender, "_RTCRtpSender__force_keyframe", False))
    if requested:
        sender._RTCRtpSender__force_keyframe = False  # type: ignore[attr-defined]
    return requested


def live_encoders() -> int:
    return len(LIVE)
