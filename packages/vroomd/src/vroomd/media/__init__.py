"""vroomd's WebRTC media: the agent's screen as H264/VP8, its voice as Opus, the
client's microphone into a voice pipeline. See docs/vroomd-webrtc.md."""

from .audio import Microphone, OpusSpeaker, SpeakerTrack
from .config import MediaConfig
from .encoders import EncoderStats
from .peer import MediaPeer, codec_preferences, resources
from .video import FrameSource, LatestFrame, ScreenTrack
from .voice import AudioChunk, LevelMeter, Speaker, VoiceFactory, VoicePipeline

__all__ = [
    "AudioChunk",
    "EncoderStats",
    "FrameSource",
    "LatestFrame",
    "LevelMeter",
    "MediaConfig",
    "MediaPeer",
    "Microphone",
    "OpusSpeaker",
    "ScreenTrack",
    "Speaker",
    "SpeakerTrack",
    "VoiceFactory",
    "VoicePipeline",
    "codec_preferences",
    "resources",
]
