"""`vroom term` starts lean (issue 5: time to the first prompt byte): the
client imports only what its path needs, and the common command lines are
parsed exactly as argparse would parse them, without argparse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openmux.aio import wsclient
from vroom_terminal.cli import build_parser, parse_common
from vterm_support import VROOM, VroomdProcess, modules_after

PYTHON = sys.executable

NEVER_ON_THE_CLIENT_PATH = {
    "argparse",  # `term DEST` is parsed without it
    "vroom_terminal.server",
    "openmux.aio.stdio",
    "openmux.aio.static",  # pathlib
    "hmac",  # only a server compares tokens
    "websockets",  # ws:// goes through openmux.aio.wsclient
    "openmux.aio.ws",
    "importlib.metadata",
}


def test_importing_the_cli_imports_nothing_heavy() -> None:
    loaded = modules_after("import vroom_terminal.cli")
    heavy = {
        "argparse",
        "asyncio",
        "uvloop",
        "dataclasses",
        "cbor2",
        "openmux",
        "vroom_terminal.client",
        "vroom_terminal.server",
        "vroom_terminal.events",
        "websockets",
    }
    assert not heavy & loaded


def test_the_protocol_client_does_not_import_the_server() -> None:
    loaded = modules_after("import vroom_terminal.client, openmux.aio, openmux.aio.tcp")
    assert not NEVER_ON_THE_CLIENT_PATH & loaded
    assert "vroom_terminal.client" in loaded


@pytest.mark.parametrize("scheme", ["tcp", "ws"])
def test_a_real_session_imports_only_the_client_path(
    vroomd: VroomdProcess, scheme: str, tmp_path: Path
) -> None:
    dump = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from vroom_terminal.cli import main\n"
        "sys.exit(main(['term', sys.argv[2], '--', 'echo ok']))\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", code, str(dump), vroomd.url(scheme)],
        env=vroomd_env(vroomd),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"ok\n"
    loaded = set(json.loads(dump.read_text()))
    if scheme == "ws" and wsclient.proxy_configured():
        pytest.skip("a proxy is configured: ws:// goes through websockets")
    assert not NEVER_ON_THE_CLIENT_PATH & loaded


def vroomd_env(vroomd: VroomdProcess) -> dict[str, str]:
    return {**os.environ, "VROOM_TOKEN": vroomd.token}


ARGVS = [
    ["term", "host"],
    ["term", "user@host:2222"],
    ["term", "ws://127.0.0.1:8022/omux"],
    ["term", "host", "--"],
    ["term", "host", "--", "--"],
    ["term", "host", "--", "ls", "-l"],
    ["term", "host", "--", "-h"],
    ["term", "host", "--", "echo a b", "--timeout", "1"],
    ["term", "host", "ls"],
    ["term", "-t", "host"],
    ["term", "host", "-t"],
    ["term", "--timeout", "3", "host"],
    ["term", "host", "-e", "A=1", "--", "env"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_the_argparse_free_path_parses_as_argparse_does(argv: list[str]) -> None:
    fast = parse_common(argv)
    if fast is None:
        return  # argparse's turn
    assert vars(fast) == vars(build_parser().parse_args(argv))


def test_the_argparse_free_path_takes_the_common_forms() -> None:
    assert parse_common(["term", "host"]) is not None
    assert parse_common(["term", "host", "--", "make", "-j4"]) is not None
    for other in (["term"], ["term", "-h"], ["--help"], ["term", "host", "ls"], ["term", ""]):
        assert parse_common(other) is None


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        ([], 2, b"usage: vroom"),
        (["term"], 2, b"the following arguments are required: DEST"),
        (["term", "--help"], 0, b"Open a login shell on a vroomd"),
        (["--help"], 0, b"VROOM client"),
        (["nope"], 2, b"invalid choice"),
    ],
)
def test_help_and_usage_errors_unchanged(args: list[str], code: int, needle: bytes) -> None:
    result = subprocess.run([VROOM, *args], capture_output=True, timeout=60)
    assert result.returncode == code
    assert needle in result.stdout + result.stderr
