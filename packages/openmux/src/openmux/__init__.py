"""OpenMux 0.1: named, typed channels multiplexed over one connection.

The core is sans-IO (`Connection`); transports live in `openmux.aio`.
"""

from .channels import Channel, ChannelSpec
from .codes import MAGIC, VERSION, CloseCode, ControlType, Flags
from .config import DEFER, Config
from .connection import Connection, State
from .errors import (
    CodedError,
    ConnectionClosedError,
    FrameError,
    LocalProtocolError,
    MessageTooLarge,
    NotOpenMux,
    OpenMuxError,
    ProtocolError,
)
from .events import (
    ChannelClosed,
    ChannelOpened,
    ChannelRejected,
    ChannelRequested,
    ConnectionTerminated,
    ErrorReceived,
    Event,
    ExtensionMessage,
    HandshakeCompleted,
    MessageReceived,
    PongReceived,
)
from .frame import FrameReader, decode_message, encode_frame, encode_header

__version__ = "0.1.0"

__all__ = [
    "DEFER",
    "MAGIC",
    "VERSION",
    "Channel",
    "ChannelClosed",
    "ChannelOpened",
    "ChannelRejected",
    "ChannelRequested",
    "ChannelSpec",
    "CloseCode",
    "CodedError",
    "Config",
    "Connection",
    "ConnectionClosedError",
    "ConnectionTerminated",
    "ControlType",
    "ErrorReceived",
    "Event",
    "ExtensionMessage",
    "Flags",
    "FrameError",
    "FrameReader",
    "HandshakeCompleted",
    "LocalProtocolError",
    "MessageReceived",
    "MessageTooLarge",
    "NotOpenMux",
    "OpenMuxError",
    "PongReceived",
    "ProtocolError",
    "State",
    "decode_message",
    "encode_frame",
    "encode_header",
]
