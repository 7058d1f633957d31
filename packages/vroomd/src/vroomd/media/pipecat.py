"""A Pipecat pipeline behind vroomd's `VoicePipeline` interface (`pip install pipecat-ai`).

Pipecat is the voice library chosen for the agent (upstream's voxio-bot uses
it): a pipeline of frame processors, typically STT -> LLM -> TTS, between an
input and an output transport. Here the transports are ours: the input is
fed by `push_audio()` (the client's microphone, from its WebRTC track) and
the output plays into the `Speaker` (the client's Opus track). What sits in
between is the caller's: `PipecatVoice(lambda: [stt, llm_context, llm, tts])`.
The cloud services those need cannot run here; the tests put a local echo
processor in between, which exercises the whole path without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

from .voice import AudioChunk, Speaker

AHEAD = 0.2
"""Seconds of speech handed to the speaker ahead of playback: Pipecat times
its speaking events and interruptions by how fast its output is taken."""


class _Input(BaseInputTransport):
    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.ready = asyncio.Event()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.ready.set()


class _Output(BaseOutputTransport):
    def __init__(self, params: TransportParams, speaker: Speaker) -> None:
        super().__init__(params)
        self.speaker = speaker

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            self.speaker.interrupt()  # barge-in: what is queued is stale now
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.speaker.play(frame.audio, frame.sample_rate, frame.num_channels)
        queued = getattr(self.speaker, "queued_seconds", 0.0)
        while queued > AHEAD:
            await asyncio.sleep(min(queued - AHEAD, 0.05))
            queued = getattr(self.speaker, "queued_seconds", 0.0)
        return True


class Echo(FrameProcessor):
    """Microphone audio straight back out: a local stand-in for STT -> LLM -> TTS."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            frame = OutputAudioRawFrame(
                audio=frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels
            )
        await self.push_frame(frame, direction)


class PipecatVoice:
    """`VoicePipeline` running `processors()` between our microphone and speaker."""

    def __init__(
        self,
        processors: Callable[[], Sequence[FrameProcessor]],
        *,
        sample_rate: int = 16_000,
        output_sample_rate: int = 24_000,
    ) -> None:
        self.sample_rate = sample_rate
        self.output_sample_rate = output_sample_rate
        self._processors = processors
        self._input: _Input | None = None
        self._task: PipelineWorker | None = None
        self._run: asyncio.Task[Any] | None = None

    async def start(self, speaker: Speaker) -> None:
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=self.sample_rate,
            audio_out_enabled=True,
            audio_out_sample_rate=self.output_sample_rate,
        )
        self._input = _Input(params)
        pipeline = Pipeline([self._input, *self._processors(), _Output(params, speaker)])
        self._task = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=self.sample_rate,
                audio_out_sample_rate=self.output_sample_rate,
            ),
            idle_timeout_secs=None,
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self._task)
        self._run = asyncio.get_running_loop().create_task(runner.run())

    async def push_audio(self, chunk: AudioChunk) -> None:
        # Audio from before the pipeline is up is dropped: nobody was listening yet.
        if self._input is not None and self._input.ready.is_set():
            await self._input.push_audio_frame(
                InputAudioRawFrame(audio=chunk.pcm, sample_rate=chunk.sample_rate, num_channels=1)
            )

    async def stop(self) -> None:
        task, run = self._task, self._run
        self._task = self._run = None
        self._input = None
        if task is not None:
            await task.cancel()
        if run is not None:
            await asyncio.gather(run, return_exceptions=True)
