"""vroomd.media without a browser: pacing, dropping, bounds, conversion, validation."""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import pytest
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st
from vroomd.media import LatestFrame, LevelMeter, MediaConfig, ScreenTrack, SpeakerTrack, playout
from vroomd.media.audio import FRAME_SAMPLES, OPUS_SILENCE, SAMPLE_RATE, OpusSpeaker, dbfs
from vroomd.media.encoders import BitrateGovernor, EncoderStats, H264Encoder, h264_level
from vroomd.media.playout import PlayoutDelayMap, offered_id
from vroomd.media.video import Encoded, FrameConverter, fit, jpeg_size
from vroomd.media.voice import AudioChunk

from .webrtc_harness import rtp_extensions


def jpeg(width: int, height: int, rgb: tuple[int, int, int] = (255, 0, 255)) -> bytes:
    frame = av.VideoFrame(width, height, "rgb24")
    frame.planes[0].update(bytes(rgb) * (width * height))
    enc = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuvj420p"
    enc.time_base = fractions.Fraction(1, 30)
    out = b"".join(bytes(p) for p in enc.encode(frame.reformat(format="yuvj420p")))
    return out + b"".join(bytes(p) for p in enc.encode(None))


# ------------------------------------------------------------------ video


async def test_the_track_sends_the_newest_frame_and_drops_the_rest() -> None:
    source = LatestFrame()
    track = ScreenTrack(source, MediaConfig(fps=30))
    frames = [jpeg(64, 48, (i * 40, 0, 0)) for i in range(5)]
    for f in frames:
        source.put(f)
    assert source.dropped == 4
    first = await track.recv()
    assert (first.width, first.height) == (64, 48)
    assert track.stats.taken == 1
    red = first.reformat(format="rgb24").planes[0]
    assert abs(bytes(red)[0] - 160) < 16  # the last frame put, not the first
    track.stop()


async def test_a_still_screen_is_repeated_and_timestamps_grow() -> None:
    source = LatestFrame()
    track = ScreenTrack(source, MediaConfig(fps=30, idle_fps=20))
    source.put(jpeg(32, 32))
    a = await track.recv()
    pts_a = a.pts
    b = await track.recv()  # nothing new: the idle repeat
    assert track.stats.repeats == 1 and b.pts > pts_a
    assert b.time_base == fractions.Fraction(1, 90_000)
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_closing_the_source_ends_the_track() -> None:
    source = LatestFrame()
    track = ScreenTrack(source)
    asyncio.get_running_loop().call_later(0.01, source.close)
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"


async def test_set_source_switches_at_once() -> None:
    old, new = LatestFrame(), LatestFrame()
    track = ScreenTrack(old)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    new.put(jpeg(48, 32))
    track.set_source(new)
    frame = await asyncio.wait_for(waiting, 10)
    assert frame.width == 48
    old.close()  # the old source closing no longer matters
    track.stop()


async def test_undecodable_frames_are_skipped() -> None:
    source = LatestFrame()
    track = ScreenTrack(source)
    source.put(b"\xff\xd8 not a jpeg")
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.05)
    source.put(jpeg(32, 32))
    frame = await asyncio.wait_for(waiting, 10)
    assert frame.width == 32 and track.stats.bad == 1
    track.stop()


async def test_a_bound_encoder_gets_decode_and_encode_in_one_job() -> None:
    """With the sender's encoder bound, recv() returns packets ready to send,
    a keyframe request reaches the next frame, and pack() passes them on."""
    source = LatestFrame()
    track = ScreenTrack(source, MediaConfig(fps=60, idle_fps=20))
    encoder = H264Encoder(MediaConfig())
    requests = [False, True, False]
    track.bind_encoder(encoder, lambda: requests.pop(0))
    source.put(jpeg(64, 48))
    first = await track.recv()
    assert isinstance(first, Encoded) and first.payloads
    assert encoder.pack(first) == (first.payloads, first.timestamp)
    source.put(jpeg(64, 48, (0, 255, 0)))
    forced = await track.recv()  # the receiver asked for a keyframe meanwhile
    repeat = await track.recv()  # nothing new: the idle repeat, encoded too
    assert isinstance(repeat, Encoded) and repeat.timestamp > forced.timestamp > first.timestamp
    assert encoder.stats.frames == 3 and encoder.stats.keyframes == 1
    assert (track.stats.taken, track.stats.repeats, track.stats.sent) == (2, 1, 3)
    assert track.stats.encode_seconds > 0
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_conversion_is_limited_range_yuv420p_within_the_limit() -> None:
    convert = FrameConverter((100, 100))
    frame = convert(jpeg(400, 200, (255, 255, 255)))
    assert frame is not None
    assert (frame.width, frame.height, frame.format.name) == (100, 50, "yuv420p")
    assert 230 <= bytes(frame.planes[0])[0] <= 240  # white is 235 in limited range
    odd = convert(av.VideoFrame(51, 33, "yuv420p"))
    assert odd is not None and (odd.width, odd.height) == (50, 32)


def test_full_range_conversion_keeps_the_jpegs_yuv() -> None:
    convert = FrameConverter((100, 100), full_range=True)
    frame = convert(jpeg(64, 48, (255, 255, 255)))
    assert frame is not None and frame.format.name == "yuvj420p"
    assert bytes(frame.planes[0])[0] >= 250  # white stays 255: no range conversion
    scaled = convert(jpeg(400, 200))
    assert scaled is not None and (scaled.width, scaled.height, scaled.format.name) == (
        100,
        50,
        "yuvj420p",
    )
    limited = convert(av.VideoFrame(32, 32, "yuv420p"))
    assert limited is not None and limited.format.name == "yuvj420p"


def test_h264_encoder_restarts_when_the_range_changes() -> None:
    encoder = H264Encoder(MediaConfig())
    for i, fmt in enumerate(("yuvj420p", "yuvj420p", "yuv420p")):
        frame = av.VideoFrame(64, 48, fmt)
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame, False)
        assert payloads
    assert encoder.stats.restarts == 1


def test_fit() -> None:
    assert fit(1280, 720, (1920, 1200)) == (1280, 720)
    assert fit(3840, 2160, (1920, 1200)) == (1920, 1080)
    assert fit(3, 3, (1920, 1200)) == (2, 2)


def test_jpeg_size_reads_the_frame_header() -> None:
    assert jpeg_size(jpeg(320, 200)) == (320, 200)
    assert jpeg_size(b"") is None
    assert jpeg_size(b"\xff\xd8\xff\xda\x00\x02") is None
    huge = b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff" + b"\x00" * 20
    assert jpeg_size(huge) == (65535, 65535)
    assert FrameConverter((1920, 1200))(huge) is None  # refused before decoding


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_fuzz_jpeg_size_and_converter(data: bytes) -> None:
    size = jpeg_size(b"\xff\xd8" + data)
    assert size is None or (size[0] > 0 and size[1] > 0)
    result = FrameConverter((64, 64))(b"\xff\xd8" + data)
    assert result is None or (result.width <= 64 and result.height <= 64)


# ------------------------------------------------------------------ encoders


def test_governor_bounds_and_hysteresis() -> None:
    config = MediaConfig(
        min_bitrate=300_000, start_bitrate=1_000_000, max_bitrate=2_000_000, bitrate_interval=1
    )
    gov = BitrateGovernor(config, EncoderStats())
    assert gov.propose(950_000, now=10) == 1_000_000  # within 15 %: no restart
    assert gov.propose(50_000_000, now=11) == 2_000_000  # clamped high
    assert gov.propose(100_000, now=11.5) == 2_000_000  # too soon after a change
    assert gov.propose(100_000, now=12.5) == 300_000  # clamped low
    assert gov.propose(400_000, now=20) == 300_000  # up by less than half: no restart
    assert gov.propose(600_000, now=14) == 300_000  # up, but too soon (3 intervals)
    assert gov.propose(600_000, now=20) == 600_000
    assert len(gov.stats.remb) == 7 and gov.stats.bitrate == 600_000


def test_h264_encoder_restarts_on_bitrate_and_size_changes() -> None:
    config = MediaConfig(bitrate_interval=0)
    encoder = H264Encoder(config)
    convert = FrameConverter((1920, 1200))
    frame = convert(jpeg(320, 240))
    assert frame is not None
    for i in range(3):
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame, force_keyframe=(i == 0))
        assert payloads
    encoder.target_bitrate = 1_234_567  # x264 keeps kbit/s: no restart per frame for that
    frame.pts = 3 * 3000
    encoder.encode(frame)
    encoder.encode(frame)
    assert encoder.stats.restarts == 1
    encoder.target_bitrate = 4_000_000
    small = convert(jpeg(160, 120))
    assert small is not None
    small.pts, small.time_base = 9000, fractions.Fraction(1, 90_000)
    encoder.encode(small)
    stats = encoder.stats
    assert stats.restarts == 2 and stats.frames == 6 and stats.keyframes == 1
    assert (stats.width, stats.height, stats.bitrate) == (160, 120, 4_000_000)
    assert h264_level(1280, 720) == "31" and h264_level(1920, 1080) == "40"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"fps": 30, "idle_fps": 60},
        {"fps": 121},
        {"playout_delay": (10, 0)},
        {"playout_delay": (-10, 0)},
        {"playout_delay": (0, 50_000)},
        {"max_size": (8, 8)},
        {"codecs": ("AV1",)},
        {"codecs": ()},
        {"min_bitrate": 2_000_000},
        {"h264_preset": "placebo"},
        {"bitrate_hysteresis": 1.5},
        {"max_speech_seconds": 0},
    ],
)
def test_config_is_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MediaConfig(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ playout delay


def test_playout_delay_encoding() -> None:
    assert playout.encode(0, 0) == b"\x00\x00\x00"
    assert playout.decode(playout.encode(100, 400)) == (100, 400)
    assert playout.encode(40_950, 40_950) == b"\xff\xff\xff"
    for bad in ((10, 0), (-10, 0), (0, 40_960)):
        with pytest.raises(ValueError):
            playout.encode(*bad)
    with pytest.raises(ValueError):
        playout.decode(b"\x00")


def _parameters(*uris: str) -> RTCRtpParameters:
    extensions = [RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in enumerate(uris, 1)]
    return RTCRtpParameters(headerExtensions=extensions)


@pytest.mark.parametrize("negotiated", [True, False])
def test_packets_carry_the_playout_delay_once_negotiated(negotiated: bool) -> None:
    writer = PlayoutDelayMap((0, 100))
    uris = ["urn:ietf:params:rtp-hdrext:sdes:mid"] + ([playout.URI] if negotiated else [])
    writer.configure(_parameters(*uris))
    packet = RtpPacket(payload_type=102, sequence_number=1, timestamp=2)
    packet.extensions.mid = "0"
    packet.payload = b"frame"
    data = packet.serialize(writer)
    assert RtpPacket.parse(data).payload == b"frame"
    elements = dict(rtp_extensions(data))
    assert elements[1] == b"0"
    assert elements.get(2) == (playout.encode(0, 100) if negotiated else None)


def test_the_offered_extension_id_is_found_per_m_line() -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        f"a=extmap:5 {playout.URI}\r\na=rtpmap:96 VP8/90000\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
    )
    assert offered_id(offer, "0") == 5
    assert offered_id(offer, "1") is None and offered_id(offer, "7") is None


# ------------------------------------------------------------------ audio


async def test_speaker_sends_silence_then_speech_paced_in_20ms_frames() -> None:
    speaker = SpeakerTrack(max_seconds=1)
    silent = await speaker.recv()
    assert silent.samples == FRAME_SAMPLES and silent.sample_rate == SAMPLE_RATE
    assert not any(bytes(silent.planes[0])[: FRAME_SAMPLES * 2])
    tone = bytes(range(256)) * 8  # 1024 mono samples at 16 kHz -> 3072 at 48 kHz
    speaker.play(tone, 16_000)
    assert speaker.speaking and 0.05 < speaker.queued_seconds < 0.07
    spoken = await speaker.recv()
    assert spoken.pts == FRAME_SAMPLES and any(bytes(spoken.planes[0]))
    speaker.interrupt()
    assert not speaker.speaking
    with pytest.raises(ValueError):
        speaker.play(b"\x00" * (2 * SAMPLE_RATE * 2))  # two seconds > the limit
    with pytest.raises(ValueError):
        speaker.play(b"\x00\x00\x00", 48_000)
    with pytest.raises(ValueError):
        speaker.play(b"\x00\x00", 1000)
    speaker.stop()
    with pytest.raises(MediaStreamError):
        await speaker.recv()


async def test_the_speaker_goes_out_as_opus_and_silence_is_a_constant_frame() -> None:
    speaker = SpeakerTrack(max_seconds=1)
    track = OpusSpeaker(speaker)
    decoder = av.CodecContext.create("libopus", "r")
    decoder.format, decoder.layout, decoder.sample_rate = "s16", "mono", SAMPLE_RATE

    def decoded(packet: av.Packet) -> bytes:
        return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in decoder.decode(packet))

    silent = await track.recv()
    assert bytes(silent) == OPUS_SILENCE and silent.pts == 0
    assert decoded(silent) == bytes(2 * FRAME_SAMPLES)
    tone = b"".join(
        round(8000 * math.sin(2 * math.pi * 440 * n / SAMPLE_RATE)).to_bytes(
            2, "little", signed=True
        )
        for n in range(4 * FRAME_SAMPLES)
    )
    speaker.play(tone)
    spoken = [await track.recv() for _ in range(4)]
    assert [p.pts for p in spoken] == [FRAME_SAMPLES * i for i in range(1, 5)]
    assert all(bytes(p) != OPUS_SILENCE for p in spoken) and speaker.spoken_frames == 4
    assert (
        dbfs(b"".join(decoded(p) for p in spoken)) > -30
    )  # the tone: -15 dBFS, less the codec delay
    track.stop()
    assert speaker.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_level_meter_measures_and_echoes() -> None:
    speaker = SpeakerTrack()
    meter = LevelMeter(echo=True)
    await meter.start(speaker)
    loud = (b"\x00\x40" + b"\x00\xc0") * 800
    await meter.push_audio(AudioChunk(loud, 16_000, 0.0))
    assert meter.chunks == 1 and meter.seconds == pytest.approx(0.1)
    assert meter.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert speaker.speaking
    await meter.stop()
    assert meter.stopped and dbfs(b"") == -math.inf
    speaker.stop()
