"""The media of one client's RTCPeerConnection: screen video, agent voice, microphone.

Build a `MediaPeer` on a fresh `RTCPeerConnection` BEFORE applying the
client's offer: aiortc picks each m-line's codecs when the offer is applied
(`setRemoteDescription`), from the transceivers that exist then, in the
offer's order (Chromium lists VP8 first) unless a transceiver has codec
preferences. Ours prefer H264 and fall back to VP8 when the browser offers
no H264; an offer without video or audio simply leaves that track unused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

from . import encoders, playout
from .audio import Microphone, OpusSpeaker, SpeakerTrack
from .config import MediaConfig
from .encoders import EncoderStats
from .video import FrameSource, LatestFrame, ScreenTrack
from .voice import VoicePipeline

log = logging.getLogger("vroomd.media")

_H264_ORDER = ("42e01f", "42001f")
"""Constrained Baseline first: every browser decodes it, in hardware too."""


def codec_preferences(codecs: tuple[str, ...]) -> list[Any]:
    """aiortc's video capabilities ordered by `codecs` (names), RTX kept."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    ordered: list[Any] = []
    for name in codecs:
        matching = [c for c in capabilities if c.mimeType.lower() == f"video/{name.lower()}"]
        if name == "H264":
            matching.sort(
                key=lambda c: (
                    _H264_ORDER.index(c.parameters.get("profile-level-id", ""))
                    if c.parameters.get("profile-level-id") in _H264_ORDER
                    else len(_H264_ORDER)
                )
            )
        ordered += matching
    ordered += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return ordered


class MediaPeer:
    """Tracks, encoders and the voice pipeline of one peer connection; `close()` frees them."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        config: MediaConfig | None = None,
        *,
        source: FrameSource | None = None,
        voice: VoicePipeline | None = None,
    ) -> None:
        self.pc = pc
        self.config = config = config or MediaConfig()
        self.frames = LatestFrame()
        """The default video source: `put()` JPEG bytes or frames into it."""
        self.video = ScreenTrack(source if source is not None else self.frames, config)
        self.encoder = EncoderStats()
        self.video_transceiver = pc.addTransceiver(self.video, direction="sendonly")
        self.video_transceiver.setCodecPreferences(codec_preferences(config.codecs))
        encoders.install(self.video_transceiver.sender, config, self.encoder)
        if config.playout_delay is not None:
            playout.install(pc, self.video_transceiver, config.playout_delay)
        self.speaker: SpeakerTrack | None = None
        self.audio_transceiver = None
        if config.audio:
            self.speaker = SpeakerTrack(config.max_speech_seconds)
        if config.audio or config.microphone:
            direction = (
                "sendrecv"
                if config.audio and config.microphone
                else "sendonly"
                if config.audio
                else "recvonly"
            )
            self.audio_transceiver = pc.addTransceiver(
                OpusSpeaker(self.speaker) if self.speaker is not None else "audio",
                direction=direction,
            )
        self.voice = voice
        self.microphone: Microphone | None = None
        self._voice_started = False
        self._closing: asyncio.Task[None] | None = None
        self.closed = asyncio.get_running_loop().create_future()
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    @property
    def codec(self) -> str:
        """The video codec in use ("" until the first frame is encoded)."""
        return self.encoder.codec

    async def start(self) -> None:
        """Start the voice pipeline (before the offer is applied, so that the
        microphone has somewhere to go as soon as it arrives)."""
        if self.voice is not None and not self._voice_started:
            self._voice_started = True
            speaker = self.speaker if self.speaker is not None else _Mute()
            await self.voice.start(speaker)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or not self.config.microphone or self.voice is None:
            return
        if self.microphone is not None or self._closing is not None:
            return
        self.microphone = Microphone(track, self.voice)
        self.microphone.start()

    def _on_state(self) -> None:
        if self.pc.connectionState in ("closed", "failed"):
            self.close()

    def close(self) -> asyncio.Task[None]:
        """Release everything (idempotent); await the task to know it is done."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        return self._closing

    async def _close(self) -> None:
        try:
            self.video.stop()
            self.frames.close()
            if self.speaker is not None:
                self.speaker.stop()
            if self.microphone is not None:
                await self.microphone.stop()
            if self.voice is not None and self._voice_started:
                try:
                    await self.voice.stop()
                except Exception:
                    log.exception("the voice pipeline failed to stop")
        finally:
            if not self.closed.done():
                self.closed.set_result(None)


class _Mute:
    """The speaker of a peer that sends no audio."""

    def play(self, pcm: bytes, sample_rate: int = 48_000, channels: int = 1) -> None:
        pass

    def interrupt(self) -> None:
        pass


def resources() -> dict[str, int]:
    """Live media objects in this process (call `gc.collect()` first for encoders)."""
    from .audio import live_audio
    from .video import live_tracks

    return {
        "video_tracks": live_tracks(),
        "audio": live_audio(),
        "encoders": encoders.live_encoders(),
    }
