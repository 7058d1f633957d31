"""`vroomd`: the command line of the daemon.

Safe by default: with no options it listens on WebSocket at 127.0.0.1:8022
only, and requires a token, generated on first start, stored 0600 in the
state directory and printed once, with the `vroom term` line that connects.
Every failure to start is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import __version__

DEFAULT_LISTEN = "ws://127.0.0.1:8022"
DEFAULT_PORTS = {"ws": 8022, "wss": 8022, "tcp": 2222, "tls": 2222, "quic": 4433}
SECURE_SCHEMES = {"wss", "tls", "quic"}
TOKEN_FILE = "token"

log = logging.getLogger("vroomd")


class UsageError(Exception):
    """A bad option or environment: printed as one line, exit status 2."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "vroomd"


def normalize_listen(url: str) -> str:
    """Check a --listen URL and fill in the default port; UsageError if bad."""
    if "://" not in url:
        raise UsageError(f"--listen {url!r}: expected scheme://host[:port], e.g. {DEFAULT_LISTEN}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        known = ", ".join(sorted(DEFAULT_PORTS))
        raise UsageError(f"--listen {url!r}: unsupported scheme {scheme!r} (use {known})")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--listen {url!r}: bad port") from None
    host = parts.hostname
    if not host:
        raise UsageError(f"--listen {url!r}: no host (use 127.0.0.1 for local access only)")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = parts.path if scheme in ("ws", "wss") else ""
    if (
        scheme in ("ws", "wss")
        and path
        and not (path in ("/omux", "/vroom") or path.startswith("/omux/"))
    ):
        raise UsageError(f"--listen {url!r}: WebSocket path must be /omux, /omux/vroom or /vroom")
    return f"{scheme}://{hostport}{path}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_token(state_dir: Path, token_file: str | None) -> tuple[str, bool]:
    """(token, created). A given --token-file must exist; the default one is
    generated on first start (secrets.token_urlsafe(32), mode 0600)."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"--token-file {token_file}: the file is empty")
        return token, False
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fp:
            fp.write(token + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the token to {path}: {exc.strerror}") from None
    return token, True


def connect_line(url: str) -> str:
    """The `vroom term` command that reaches a listen URL (0.0.0.0 -> 127.0.0.1)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    hostport = f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"
    return f"vroom term {parts.scheme}://{hostport}{parts.path}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vroomd",
        description=(
            "The VROOM daemon: real terminals (VROOM-Terminal over OpenMux) for `vroom term` "
            "and the browser, over WebSocket, TCP, TLS or QUIC."
        ),
        epilog=(
            "Defaults are safe: WebSocket on 127.0.0.1:8022 only, and a token is required. "
            "On first start a token is generated, stored with mode 0600 in the state "
            "directory and printed once; `vroom term` on the same machine finds it there.\n"
            "Examples:\n"
            "  vroomd\n"
            "  vroomd --listen ws://127.0.0.1:8022 --listen tcp://127.0.0.1:2222\n"
            "  vroomd --listen tls://0.0.0.0:2222 --cert cert.pem --key key.pem\n"
            "Then, in another terminal:  vroom term ws://127.0.0.1:8022"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        metavar="URL",
        action="append",
        help=(
            "where to listen (repeatable): ws://HOST:PORT[/PATH] (paths /omux, /omux/vroom "
            "and /vroom are all served), wss://, tcp://, tls://, quic://. "
            f"Default: {DEFAULT_LISTEN}"
        ),
    )
    parser.add_argument(
        "--token-file", metavar="PATH", help="read the token from PATH instead of the state dir"
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="token, certificates and state (default: $XDG_STATE_HOME/vroomd or "
        "~/.local/state/vroomd)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="accept clients without a token (refused unless every --listen is loopback)",
    )
    parser.add_argument(
        "--max-sessions",
        metavar="N",
        type=int,
        default=256,
        help="most terminal sessions at once; more are refused with ERROR 503 (default 256)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=int,
        default=256,
        help="most client connections at once; more are refused with ERROR 503 (default 256)",
    )
    parser.add_argument(
        "--cert", metavar="PEM", help="TLS certificate for wss://, tls://, quic:// listeners"
    )
    parser.add_argument(
        "--key",
        metavar="PEM",
        help="its private key (without --cert/--key a self-signed pair is made in the state dir)",
    )
    parser.add_argument(
        "--shell", metavar="PATH", help="the shell for sessions (default: your login shell)"
    )
    parser.add_argument(
        "--drain-timeout",
        metavar="SECONDS",
        type=float,
        default=2.0,
        help="after a session's process exits, how long to wait for the PTY's last "
        "output (default 2)",
    )
    parser.add_argument(
        "--window",
        metavar="BYTES",
        type=int,
        default=1024 * 1024,
        help="most unacknowledged output per session when the client offers flow "
        "control (default 1048576)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default: info (one line per session start and end)",
    )
    parser.add_argument("--version", action="version", version=f"vroomd {__version__}")
    from .graphical.config import add_arguments as add_graphical_arguments

    add_graphical_arguments(parser)
    from .webrtc import add_arguments as add_webrtc_arguments

    add_webrtc_arguments(parser)
    return parser


def _ssl_context(args: argparse.Namespace, state_dir: Path, urls: list[str]) -> object:
    """A server SSLContext when a secure listener was asked for, else None."""
    if not any(urlsplit(u).scheme in SECURE_SCHEMES for u in urls):
        return None
    import ssl

    certfile, keyfile = args.cert, args.key
    if (certfile is None) != (keyfile is None):
        raise UsageError("--cert and --key go together")
    if certfile is None:
        certfile, keyfile = str(state_dir / "cert.pem"), str(state_dir / "key.pem")
        if not (os.path.exists(certfile) and os.path.exists(keyfile)):
            from openmux.aio.quic import write_self_signed_certificate

            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            hosts = ["127.0.0.1", "localhost", socket.gethostname()]
            for url in urls:
                host = urlsplit(url).hostname
                if host and host not in hosts and host not in ("0.0.0.0", "::"):
                    hosts.append(host)
            write_self_signed_certificate(state_dir, hosts)
            print(f"vroomd: made a self-signed certificate: {certfile}", file=sys.stderr)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the certificate {certfile}: {exc}") from None
    args.cert, args.key = certfile, keyfile  # QUIC loads them itself
    return context


def _describe_listen_error(url: str, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen on {url}: address already in use"
        if exc.errno == errno.EACCES:
            return f"cannot listen on {url}: permission denied (ports < 1024 need root)"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {url}: no such local address"
        if isinstance(exc, socket.gaierror):
            return f"cannot listen on {url}: unknown host"
        return f"cannot listen on {url}: {exc.strerror or exc}"
    return f"cannot listen on {url}: {exc}"


def raise_fd_limit() -> None:
    """Each session holds a PTY master and a pidfd: lift the soft limit on
    open files to the hard one, as daemons do."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s vroomd %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("websockets", "openmux", "asyncio", "aioquic", "quic"):
        if args.log_level != "debug":
            logging.getLogger(noisy).setLevel(logging.WARNING)
    raise_fd_limit()
    try:
        return _run(args)
    except UsageError as exc:
        print(f"vroomd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    urls = [normalize_listen(u) for u in (args.listen or [DEFAULT_LISTEN])]
    if args.max_sessions < 1 or args.max_connections < 1:
        raise UsageError("--max-sessions and --max-connections must be at least 1")
    if args.window < 4096:
        raise UsageError("--window must be at least 4096 bytes")
    if args.drain_timeout < 0:
        raise UsageError("--drain-timeout must be >= 0")
    state_dir: Path = args.state_dir or default_state_dir()
    token: str | None = None
    created = False
    if args.no_auth:
        if args.token_file:
            raise UsageError("--no-auth and --token-file contradict each other")
        exposed = [u for u in urls if not is_loopback(u)]
        if exposed:
            raise UsageError(
                f"--no-auth is only allowed on loopback addresses, not {exposed[0]} "
                "(anyone who can reach it would get a shell)"
            )
    else:
        token, created = load_or_create_token(state_dir, args.token_file)
    if args.shell is not None and not os.access(args.shell, os.X_OK):
        raise UsageError(f"--shell {args.shell}: not an executable file")
    ssl_context = _ssl_context(args, state_dir, urls)
    from .graphical.config import ConfigError, config_from_args

    try:
        graphical = config_from_args(args)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    from .webrtc import config_from_args as webrtc_config_from_args

    try:
        webrtc = webrtc_config_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    from .daemon import Daemon, DaemonConfig

    config = DaemonConfig(
        token=token,
        max_sessions=args.max_sessions,
        max_connections=args.max_connections,
        shell=args.shell,
        drain_timeout=args.drain_timeout,
        window=args.window,
        ssl=ssl_context,
        serve_options={"certfile": args.cert, "keyfile": args.key} if ssl_context else {},
        graphical=graphical,
        webrtc=webrtc,
    )
    return run_loop(_serve(config, urls, created, token, state_dir, Daemon))


def run_loop(coro: Any) -> Any:
    """uvloop when it is installed (lower per-event overhead: keystroke
    latency), unless VROOM_NO_UVLOOP is set; the stdlib loop otherwise."""
    if not os.environ.get("VROOM_NO_UVLOOP"):
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


async def _serve(
    config: object,
    urls: list[str],
    created: bool,
    token: str | None,
    state_dir: Path,
    daemon_cls: type,
) -> int:
    daemon = daemon_cls(config)
    for url in urls:
        try:
            await daemon.listen(url)
        except (OSError, ValueError) as exc:
            print(f"vroomd: {_describe_listen_error(url, exc)}", file=sys.stderr)
            await daemon.close()
            return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = daemon.urls
    if created and token is not None:
        print(
            f"vroomd: generated a token, stored in {state_dir / TOKEN_FILE} (mode 0600):\n"
            f"    {token}\n"
            f"vroomd: on this machine, `vroom term` reads it from there; elsewhere set "
            f"VROOM_TOKEN=<token>.",
            file=sys.stderr,
        )
    for url in bound:
        log.info("listening on %s", url)
    if bound:
        print(f"vroomd: ready; connect with:  {connect_line(bound[0])}", file=sys.stderr)
    if token is None:
        log.warning("authentication is off (--no-auth): loopback only")
    sys.stderr.flush()
    await stop.wait()
    log.info("shutting down")
    await daemon.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
