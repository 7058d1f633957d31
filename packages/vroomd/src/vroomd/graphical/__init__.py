"""vroomd's graphical service: the agent's Chromium over VROOM-Graphical.

`GraphicalHub` (service.py) is created by the daemon; `attach()` serves the
graphical channels of one OpenMux connection; `http()` serves the browser
page on the WebSocket port. See docs/vroomd-graphical.md.
"""

from .config import GraphicalConfig, add_arguments, config_from_args
from .service import GraphicalHub, GraphicalService

__all__ = [
    "GraphicalConfig",
    "GraphicalHub",
    "GraphicalService",
    "add_arguments",
    "config_from_args",
]
