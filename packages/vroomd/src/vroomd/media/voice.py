"""The voice pipeline interface: the client's microphone in, the agent's speech out.

The real pipeline is speech-to-text -> the agent (an LLM) -> text-to-speech,
all cloud services that cannot run here; Pipecat (`pipecat-ai`) is the
library chosen for it, and `vroomd.media.pipecat.PipecatVoice` puts a
Pipecat pipeline behind this interface. `LevelMeter` is the stand-in used by
default and in tests: it measures what it hears and can echo it back, which
exercises both directions without any service.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Microphone audio: mono signed 16-bit little-endian PCM."""

    pcm: bytes
    sample_rate: int
    timestamp: float
    """Event-loop time it was received at."""


class Speaker(Protocol):
    """Where a pipeline's speech goes (the client's Opus track)."""

    def play(self, pcm: bytes, sample_rate: int = 48_000, channels: int = 1) -> None: ...

    def interrupt(self) -> None: ...


class VoicePipeline(Protocol):
    """One client's voice conversation with the agent.

    `start()` before the first `push_audio()`; `stop()` once, when the
    client leaves (it must release everything it holds).
    """

    sample_rate: int
    """The rate `push_audio()` receives (16 kHz suits every STT)."""

    async def start(self, speaker: Speaker) -> None: ...

    async def push_audio(self, chunk: AudioChunk) -> None: ...

    async def stop(self) -> None: ...


VoiceFactory = Callable[[], VoicePipeline]
"""Builds one pipeline per client connection."""


class LevelMeter:
    """A fake pipeline that listens and measures (no STT/LLM/TTS can run here).

    `echo=True` plays what it hears back to the speaker, so a test hears
    its own microphone come back through the Opus track.
    """

    def __init__(self, sample_rate: int = 16_000, *, echo: bool = False) -> None:
        self.sample_rate = sample_rate
        self.echo = echo
        self.speaker: Speaker | None = None
        self.started = False
        self.stopped = False
        self.chunks = 0
        self.samples = 0
        self.peak_dbfs = -math.inf
        self.last_dbfs = -math.inf

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    async def start(self, speaker: Speaker) -> None:
        self.speaker = speaker
        self.started = True

    async def push_audio(self, chunk: AudioChunk) -> None:
        from .audio import dbfs

        self.chunks += 1
        self.samples += len(chunk.pcm) // 2
        self.last_dbfs = dbfs(chunk.pcm)
        self.peak_dbfs = max(self.peak_dbfs, self.last_dbfs)
        if self.echo and self.speaker is not None:
            self.speaker.play(chunk.pcm, chunk.sample_rate, 1)

    async def stop(self) -> None:
        self.stopped = True
        self.speaker = None
