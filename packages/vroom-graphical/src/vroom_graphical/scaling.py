"""Coordinates between the client's picture of the agent's screen and the agent's viewport.

The wire speaks agent viewport pixels only (VROOM-GRAPHICAL §5): origin top
left, x right, y down, `agent_x = client_x / client_width * agent_width`. We
floor the result and clamp it into the viewport, so that every point of the
client's picture maps to a pixel that exists on the agent's page (the right
and bottom edges included) and never to u16 overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class HasSize(Protocol):
    @property
    def width(self) -> float: ...

    @property
    def height(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Size:
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float


def _check(size: HasSize, what: str) -> None:
    if not (size.width > 0 and size.height > 0):
        raise ValueError(f"{what} size must be positive, got {size.width}x{size.height}")


def _clamp(value: int, lo: int, hi: int) -> int:
    return lo if value < lo else hi if value > hi else value


def to_agent(x: float, y: float, client: HasSize, agent: HasSize) -> tuple[int, int]:
    """A point on the client's picture -> agent viewport pixels (floored, clamped)."""
    _check(client, "client")
    _check(agent, "agent")
    ax = math.floor(x / client.width * agent.width) if math.isfinite(x) else 0
    ay = math.floor(y / client.height * agent.height) if math.isfinite(y) else 0
    return (
        _clamp(ax, 0, max(0, math.ceil(agent.width) - 1)),
        _clamp(ay, 0, max(0, math.ceil(agent.height) - 1)),
    )


def to_client(x: float, y: float, agent: HasSize, client: HasSize) -> tuple[float, float]:
    """Agent pixels (a CURSOR position) -> a point on the client's picture."""
    _check(client, "client")
    _check(agent, "agent")
    return x / agent.width * client.width, y / agent.height * client.height


def delta_to_agent(dx: float, dy: float, client: HasSize, agent: HasSize) -> tuple[int, int]:
    """A relative motion or scroll distance, rounded and clamped to i16."""
    _check(client, "client")
    _check(agent, "agent")
    sx = round(dx / client.width * agent.width) if math.isfinite(dx) else 0
    sy = round(dy / client.height * agent.height) if math.isfinite(dy) else 0
    return _clamp(sx, -0x8000, 0x7FFF), _clamp(sy, -0x8000, 0x7FFF)


def fit(agent: HasSize, container: HasSize) -> Rect:
    """Where the agent's picture sits in a container when scaled to fit
    (CSS `object-fit: contain`): the rectangle a client maps pointer events
    from, after subtracting its origin."""
    _check(agent, "agent")
    _check(container, "container")
    scale = min(container.width / agent.width, container.height / agent.height)
    width, height = agent.width * scale, agent.height * scale
    return Rect((container.width - width) / 2, (container.height - height) / 2, width, height)


def container_to_agent(x: float, y: float, agent: HasSize, container: HasSize) -> tuple[int, int]:
    """A point in a letterboxing container -> agent pixels (bars clamp to the edge)."""
    box = fit(agent, container)
    return to_agent(x - box.x, y - box.y, Size(box.width, box.height), agent)


__all__ = [
    "HasSize",
    "Rect",
    "Size",
    "container_to_agent",
    "delta_to_agent",
    "fit",
    "to_agent",
    "to_client",
]
