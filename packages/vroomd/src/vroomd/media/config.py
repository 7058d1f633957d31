"""What a WebRTC client's media may cost: frame rate, size, codecs and bitrate bounds."""

from __future__ import annotations

from dataclasses import dataclass

CODECS = ("H264", "VP8")
H264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
)


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Per-client media limits (one `MediaPeer` per PeerConnection uses one).

    The bitrate bounds clamp what the receiver's REMB reports ask for: below
    `min_bitrate` text is unreadable whatever the network says, and above
    `max_bitrate` a screen gains nothing visible while costing the encoder
    and the link more.
    """

    fps: float = 60.0
    """Most frames per second sent, on average; a faster screen has its extra
    frames dropped (never queued). Chromium's screencast sends at most one
    frame per display refresh (60 Hz), so the default never holds a frame
    back on its own: a lower cap saves CPU and bandwidth, and costs each
    frame up to a period of waiting when frames come in bursts."""
    idle_fps: float = 2.0
    """A still screen is re-sent this often: keyframe requests (PLI) and a
    late-joining decoder need frames, and the screencast only sends changes."""
    max_size: tuple[int, int] = (1920, 1200)
    """Larger frames are scaled down to fit (aspect ratio kept) before encoding."""
    codecs: tuple[str, ...] = CODECS
    """Video codecs in order of preference, among `CODECS`; the first one the
    client also offers is used (H264 unless the browser has none)."""
    min_bitrate: int = 300_000
    start_bitrate: int = 1_500_000
    max_bitrate: int = 6_000_000
    bitrate_hysteresis: float = 0.15
    """A receiver estimate moves the target only when it differs by more than
    this fraction: aiortc's encoders restart (a keyframe) on every change."""
    bitrate_interval: float = 1.0
    """Seconds between two bitrate changes, for the same reason."""
    bitrate_step_up: float = 0.5
    """An increase waits until the estimate is this much above the target
    (and `bitrate_interval` x 3 has passed): Chromium's estimate creeps up a
    few percent a second while it probes, and each step costs a keyframe.
    Decreases (congestion) follow `bitrate_hysteresis` at once."""
    h264_preset: str = "ultrafast"
    """x264 speed preset. aiortc's own encoder uses x264's default, medium
    (~12 ms a 720p screen frame here); ultrafast takes ~3 ms for the same
    size at the same bitrate, and CPU, not bandwidth, is what a small
    machine running the agent's browser too runs out of."""
    playout_delay: tuple[int, int] | None = (0, 0)
    """(min, max) ms the receiver may hold a frame before showing it, sent as
    the playout-delay RTP header extension when the browser offers it
    (vroomd.media.playout); (0, 0) shows each frame as soon as it decodes
    instead of after a 40-60 ms jitter buffer. None: the browser's default."""
    keyframe_interval: float = 10.0
    """Seconds between unrequested keyframes (a receiver that lost one asks with PLI)."""
    audio: bool = True
    """Send an Opus track (the agent's voice; silence while it says nothing)."""
    microphone: bool = True
    """Take the client's microphone track, if it sends one, into the voice pipeline."""
    max_speech_seconds: float = 60.0
    """Agent speech queued ahead of playback; more is refused (ValueError)."""

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be within 1..120, not {self.fps}")
        if not 0 < self.idle_fps <= self.fps:
            raise ValueError(f"idle_fps must be within (0, fps], not {self.idle_fps}")
        width, height = self.max_size
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise ValueError(f"max_size must be within 16..4096 each, not {self.max_size}")
        if not self.codecs or any(c not in CODECS for c in self.codecs):
            raise ValueError(f"codecs must be a non-empty subset of {CODECS}, not {self.codecs}")
        if not 50_000 <= self.min_bitrate <= self.start_bitrate <= self.max_bitrate:
            raise ValueError(
                "bitrates must satisfy 50000 <= min_bitrate <= start_bitrate <= max_bitrate"
            )
        if (
            not 0 <= self.bitrate_hysteresis < 1
            or self.bitrate_interval < 0
            or self.bitrate_step_up < 0
        ):
            raise ValueError("bitrate_hysteresis must be within [0, 1), bitrate_interval >= 0")
        if self.h264_preset not in H264_PRESETS:
            raise ValueError(f"h264_preset must be one of {H264_PRESETS}")
        if self.playout_delay is not None:
            low, high = self.playout_delay
            if not 0 <= low <= high <= 40_950:
                raise ValueError("playout_delay must satisfy 0 <= min <= max <= 40950 ms")
        if self.keyframe_interval <= 0 or self.max_speech_seconds <= 0:
            raise ValueError("keyframe_interval and max_speech_seconds must be positive")
