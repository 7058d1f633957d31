"""Channel descriptions: what a side asks for, and what was negotiated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._record import Record


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class ChannelSpec(Record):
    """A channel as requested (in HELLO or OPEN_CHANNEL)."""

    name: str
    reliable: bool = True
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_lifetime: int | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def fragmentable(self) -> bool:
        """Fragmentation is only allowed on reliable, ordered channels (§1)."""
        return self.reliable and self.ordered

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "name": self.name,
            "reliable": self.reliable,
            "ordered": self.ordered,
        }
        if self.max_retransmits is not None:
            obj["maxRetransmits"] = self.max_retransmits
        if self.max_packet_lifetime is not None:
            obj["maxPacketLifeTime"] = self.max_packet_lifetime
        if self.metadata is not None:
            obj["metadata"] = dict(self.metadata)
        return obj


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Channel(Record):
    """An open channel: its id and the properties both sides agreed on."""

    id: int
    name: str
    reliable: bool = True
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_lifetime: int | None = None
    metadata: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def fragmentable(self) -> bool:
        return self.reliable and self.ordered

    @classmethod
    def from_spec(cls, channel_id: int, spec: ChannelSpec) -> Channel:
        return cls(
            channel_id,
            spec.name,
            spec.reliable,
            spec.ordered,
            spec.max_retransmits,
            spec.max_packet_lifetime,
            spec.metadata,
        )

    @property
    def spec(self) -> ChannelSpec:
        return ChannelSpec(
            self.name,
            self.reliable,
            self.ordered,
            self.max_retransmits,
            self.max_packet_lifetime,
            self.metadata,
        )
