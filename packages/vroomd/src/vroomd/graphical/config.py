"""Settings of vroomd's graphical service, and their command-line options.

Kept apart from the terminal's `DaemonConfig` fields so that the CLI needs
two calls (`add_arguments`, `config_from_args`) and the daemon one field.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CONTEXT_MODES = ("per-connection", "shared")

ContextMode = Literal["per-connection", "shared"]


@dataclass
class GraphicalConfig:
    chromium: str = DEFAULT_CHROMIUM
    browser_context: ContextMode = "per-connection"
    """per-connection: a fresh browser context (cookies, storage, history) and
    page per OpenMux connection, closed with it. shared: one context and one
    page that every connection watches and drives, kept between connections."""
    allow_evaluate: bool = False
    allowed_schemes: tuple[str, ...] = ("http", "https")
    min_viewport: tuple[int, int] = (200, 150)
    max_viewport: tuple[int, int] = (1920, 1200)
    """The agent renders at the client's viewport, clamped into these bounds."""
    jpeg_quality: int = 70
    clipboard_limit: int = 256 * 1024
    """Most UTF-8 bytes of clipboard text moved either way (CLIPBOARD set/push)."""
    command_timeout: float = 15.0
    """Default and ceiling (seconds) for one COMMAND; `timeout` (ms) in a COMMAND lowers it."""
    max_command_timeout: float = 60.0
    headless: bool = True
    chromium_args: tuple[str, ...] = field(default_factory=tuple)
    """Extra Chromium flags after the house ones."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("graphical sessions (the agent's browser)")
    group.add_argument(
        "--chromium",
        metavar="PATH",
        help=f"the Chromium that Playwright drives (default {DEFAULT_CHROMIUM}; vroomd "
        "starts without it and refuses graphical sessions)",
    )
    group.add_argument(
        "--browser-context",
        choices=CONTEXT_MODES,
        default="per-connection",
        help="per-connection (default): every connection gets its own fresh browser "
        "context and page, gone when it disconnects; shared: one page that every "
        "connection watches and drives",
    )
    group.add_argument(
        "--allow-evaluate",
        action="store_true",
        help="let clients run JavaScript in the agent's page (COMMAND evaluate); refused "
        "by default",
    )
    group.add_argument(
        "--allow-scheme",
        metavar="SCHEME",
        action="append",
        default=[],
        help="also allow navigation to SCHEME: URLs (repeatable; e.g. file, data); only "
        "http and https by default",
    )


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


class ConfigError(ValueError):
    """A bad graphical option: one line, exit status 2."""


def config_from_args(args: argparse.Namespace) -> GraphicalConfig:
    chromium = args.chromium or DEFAULT_CHROMIUM
    if args.chromium is not None and not (
        os.path.isfile(chromium) and os.access(chromium, os.X_OK)
    ):
        raise ConfigError(f"--chromium {chromium}: not an executable file")
    schemes = ["http", "https"]
    for scheme in args.allow_scheme:
        name = scheme.lower().removesuffix(":")
        if not _SCHEME.fullmatch(name):
            raise ConfigError(f"--allow-scheme {scheme!r}: not a URL scheme")
        if name not in schemes:
            schemes.append(name)
    return GraphicalConfig(
        chromium=chromium,
        browser_context=args.browser_context,
        allow_evaluate=args.allow_evaluate,
        allowed_schemes=tuple(schemes),
    )
