"""Audio both ways: the agent's voice out (Opus), the client's microphone in.

`SpeakerTrack` is paced by the wall clock like a sound card: one 20 ms frame
per 20 ms, the agent's speech when some is queued and silence otherwise, so
the browser's jitter buffer never starves and speech starts without a
renegotiation. `Microphone` reads the client's track and hands it, as mono
16-bit PCM at the pipeline's rate, to a `VoicePipeline`.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import weakref
from array import array
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .voice import AudioChunk, VoicePipeline

log = logging.getLogger("vroomd.media")

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, Opus's usual frame
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every speaker track and microphone not yet garbage-collected (for leak checks)."""


def to_pcm(frame: av.AudioFrame, resampler: Any) -> bytes:
    """`frame` as mono s16 at the resampler's rate (may be empty while it fills)."""
    return b"".join(bytes(out.planes[0])[: out.samples * 2] for out in resampler.resample(frame))


def pcm_frame(pcm: bytes, sample_rate: int, channels: int) -> av.AudioFrame:
    layout = "mono" if channels == 1 else "stereo"
    frame = av.AudioFrame(format="s16", layout=layout, samples=len(pcm) // (2 * channels))
    frame.planes[0].update(pcm)
    frame.sample_rate = sample_rate
    return frame


def dbfs(pcm: bytes) -> float:
    """RMS level of mono s16 PCM in dBFS (-inf for digital silence)."""
    samples = array("h", pcm[: len(pcm) & ~1])
    if not samples:
        return -math.inf
    mean = sum(s * s for s in samples) / len(samples)
    return 10 * math.log10(mean / 32768**2) if mean else -math.inf


class SpeakerTrack(MediaStreamTrack):
    """The agent's voice: queued speech, else silence, 20 ms at a time."""

    kind = "audio"

    def __init__(self, max_seconds: float = 60.0) -> None:
        super().__init__()
        self.max_bytes = int(max_seconds * SAMPLE_RATE) * 2
        self._buffer = bytearray()
        self._resamplers: dict[tuple[int, int], Any] = {}
        self._start: float | None = None
        self._samples = 0
        self.frames = 0
        self.spoken_frames = 0
        LIVE.add(self)

    @property
    def speaking(self) -> bool:
        return bool(self._buffer)

    @property
    def queued_seconds(self) -> float:
        return len(self._buffer) / 2 / SAMPLE_RATE

    def play(self, pcm: bytes, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> None:
        """Queue s16 PCM (interleaved if stereo) after what is already queued.

        ValueError if it is malformed or would queue more than the limit:
        a TTS that outruns playback by minutes is a bug upstream.
        """
        if channels not in (1, 2) or not 8000 <= sample_rate <= 192_000:
            raise ValueError("PCM must be mono or stereo, 8-192 kHz")
        if len(pcm) % (2 * channels):
            raise ValueError("PCM length is not a whole number of s16 samples")
        if not pcm:
            return
        if sample_rate == SAMPLE_RATE and channels == 1:
            out = bytes(pcm)
        else:
            key = (sample_rate, channels)
            resampler = self._resamplers.get(key)
            if resampler is None:
                resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                self._resamplers[key] = resampler
            out = to_pcm(pcm_frame(pcm, sample_rate, channels), resampler)
        if len(self._buffer) + len(out) > self.max_bytes:
            raise ValueError(f"more than {self.max_bytes // 2 // SAMPLE_RATE} s of speech queued")
        self._buffer += out

    def interrupt(self) -> None:
        """Drop the queued speech (the person started talking: barge-in)."""
        self._buffer.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._start is None:
            self._start = now
        else:
            self._samples += FRAME_SAMPLES
            wait = self._start + self._samples / SAMPLE_RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.2:  # the loop stalled: skip ahead rather than burst
                self._samples = round((now - self._start) * SAMPLE_RATE)
        if self.readyState != "live":
            raise MediaStreamError
        size = FRAME_SAMPLES * 2
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        if chunk:
            self.spoken_frames += 1
        chunk = chunk.ljust(size, b"\0")
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = TIME_BASE
        self.frames += 1
        return frame


OPUS_SILENCE = b"\xf8\xff\xfe"
"""20 ms of digital silence as one Opus frame (CELT, fullband, mono): the
frame WebRTC senders repeat while nobody speaks."""


class OpusSpeaker(MediaStreamTrack):
    """A `SpeakerTrack` as Opus packets for aiortc: silence costs next to nothing.

    aiortc encodes each audio frame a track yields itself: a resampler to
    stereo, libopus through its executor, and the RFC 6465 level computed
    in a Python loop over the 960 samples, 50 times a second: ~0.07 of a
    core per client for a voice that is silent nearly all the time. A track
    that yields `av.Packet`s is sent as it is (aiortc's `Encoder.pack()`),
    so silence here is one constant 3-byte Opus frame and speech is encoded
    by our own libopus context (mono, in the executor). Timestamps are the
    speaker's sample clock either way.
    """

    kind = "audio"

    def __init__(self, speaker: SpeakerTrack, bitrate: int = 64_000) -> None:
        super().__init__()
        self.speaker = speaker
        self.bitrate = bitrate
        self._codec: Any = None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        frame = await self.speaker.recv()
        payload = OPUS_SILENCE
        if bytes(frame.planes[0])[: frame.samples * 2].strip(b"\0"):
            loop = asyncio.get_running_loop()
            payload = await loop.run_in_executor(None, self._encode, frame) or OPUS_SILENCE
        packet = av.Packet(payload)
        packet.pts = frame.pts
        packet.time_base = TIME_BASE
        return packet

    def _encode(self, frame: av.AudioFrame) -> bytes:
        if self._codec is None:
            codec = av.CodecContext.create("libopus", "w")
            codec.format = "s16"
            codec.layout = "mono"
            codec.sample_rate = SAMPLE_RATE
            codec.bit_rate = self.bitrate
            codec.time_base = TIME_BASE
            codec.options = {"application": "voip"}
            self._codec = codec
        packets = self._codec.encode(frame)
        return bytes(packets[-1]) if packets else b""

    def stop(self) -> None:
        super().stop()
        self.speaker.stop()


class Microphone:
    """Reads the client's audio track into a `VoicePipeline` until either ends."""

    def __init__(self, track: MediaStreamTrack, pipeline: VoicePipeline) -> None:
        self.track = track
        self.pipeline = pipeline
        self.frames = 0
        self.seconds = 0.0
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=pipeline.sample_rate)
        self.task: asyncio.Task[None] | None = None
        LIVE.add(self)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name="vroomd-mic")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self.pipeline.sample_rate
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    return
                if not isinstance(frame, av.AudioFrame):
                    continue
                pcm = to_pcm(frame, self._resampler)
                self.frames += 1
                if not pcm:
                    continue
                self.seconds += len(pcm) / 2 / rate
                await self.pipeline.push_audio(AudioChunk(pcm, rate, loop.time()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the voice pipeline failed on microphone audio")

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)


def live_audio() -> int:
    """Speaker tracks still live plus microphones still reading."""
    count = 0
    for item in LIVE:
        if isinstance(item, SpeakerTrack):
            count += item.readyState == "live"
        elif isinstance(item, Microphone):
            count += item.task is not None and not item.task.done()
    return count
