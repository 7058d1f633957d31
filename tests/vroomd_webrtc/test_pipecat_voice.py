"""A Pipecat pipeline behind the VoicePipeline interface, without any cloud service.

Pipecat (`pipecat-ai`, the optional `vroomd[voice]` extra) is skipped when
absent. The pipeline is [our input, Echo, our output]: what the microphone
says comes back through the speaker, first in-process, then from a real
Chromium's fake microphone to its own audio element over WebRTC.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import pytest
from vroomd.media import MediaConfig, SpeakerTrack
from vroomd.media.voice import AudioChunk

from .webrtc_harness import answer, eventually, open_person

pipecat = pytest.importorskip("vroomd.media.pipecat", reason="needs pipecat-ai")

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


def tone(samples: int, rate: int = 16_000) -> bytes:
    step = 2 * math.pi * 440 / rate
    return array("h", (int(8000 * math.sin(step * i)) for i in range(samples))).tobytes()


async def test_echo_pipeline_in_process() -> None:
    speaker = SpeakerTrack()
    voice = pipecat.PipecatVoice(lambda: [pipecat.Echo()])
    await voice.push_audio(AudioChunk(tone(320), 16_000, 0.0))  # before start: dropped
    await voice.start(speaker)

    async def heard() -> bool:
        await voice.push_audio(AudioChunk(tone(320), 16_000, 0.0))
        return speaker.speaking

    await eventually(heard)
    await voice.stop()
    await voice.stop()  # idempotent
    speaker.stop()


async def test_echo_pipeline_between_chromium_microphone_and_speaker(browser: Any) -> None:
    person = await open_person(browser)
    voice = pipecat.PipecatVoice(lambda: [pipecat.Echo()])
    pc, media = await answer(person, MediaConfig(), voice=voice, mic=True)
    try:
        assert media.speaker is not None
        await eventually(lambda: media.speaker.spoken_frames > 25)  # the fake mic's beeps, echoed
        await eventually(
            lambda: person.evaluate("rtc.stats().then(s => s.audio && s.audio.energy > 0.001)")
        )
    finally:
        await person.close()
        await pc.close()
    await media.closed
