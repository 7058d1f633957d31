"""Start a program on a PTY with glibc's posix_spawn (vfork), not fork.

Why: a session needs its PTY as controlling terminal, and `subprocess`
can only give it one through `preexec_fn`, which forces a real fork() of
the daemon and runs Python in the child. With vroomd's ~70 MB mapped that
took 6-8 ms between SHELL_REQUEST and the shell's exec (the parent waits
for the exec); posix_spawn takes ~0.3 ms. The child still gets everything
`Popen(start_new_session=True, close_fds=True, cwd=...)` plus the
TIOCSCTTY gave it: its own session (POSIX_SPAWN_SETSID, done by glibc
before the file actions), then the PTY opened by path without O_NOCTTY,
which makes it the controlling terminal of that new session; stdio on it
(or stdin on a pipe), every other descriptor closed, the working
directory, SIGPIPE and SIGXFSZ back to their defaults (Python ignores
SIGPIPE), the PATH search of `env` as `subprocess` does it.

Python 3.11's `os.posix_spawn` has no chdir or closefrom action, so this
calls libc through ctypes; `available()` is False (and vroomd uses
`subprocess`) on anything but glibc >= 2.34 on Linux.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

_SETSIGDEF = 0x04
_SETSID = 0x80  # glibc's POSIX_SPAWN_SETSID
_OPAQUE = 1024  # bytes for posix_spawn_file_actions_t (80), posix_spawnattr_t (336), sigset_t (128)

_libc: Any = None


def _load() -> Any:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    name, _, number = version.partition(" ")
    try:
        major, minor = (int(part) for part in number.split(".")[:2])
    except ValueError:
        return None
    if name != "glibc" or (major, minor) < (2, 34):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        argv_t = ctypes.POINTER(ctypes.c_char_p)
        for func, args in (
            ("posix_spawn", (ctypes.POINTER(ctypes.c_int), s, p, p, argv_t, argv_t)),
            ("posix_spawn_file_actions_init", (p,)),
            ("posix_spawn_file_actions_destroy", (p,)),
            ("posix_spawn_file_actions_addopen", (p, i, s, i, ctypes.c_uint)),
            ("posix_spawn_file_actions_adddup2", (p, i, i)),
            ("posix_spawn_file_actions_addclosefrom_np", (p, i)),
            ("posix_spawn_file_actions_addchdir_np", (p, s)),
            ("posix_spawnattr_init", (p,)),
            ("posix_spawnattr_destroy", (p,)),
            ("posix_spawnattr_setflags", (p, ctypes.c_short)),
            ("posix_spawnattr_setsigdefault", (p, p)),
            ("sigemptyset", (p,)),
            ("sigaddset", (p, i)),
        ):
            function = getattr(libc, func)
            function.argtypes = args
            function.restype = i
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    global _libc
    if _libc is None:
        _libc = _load() or False
    return bool(_libc)


def _c(value: str | bytes) -> bytes:
    data = os.fsencode(value)
    if b"\0" in data:
        raise ValueError("embedded null byte")
    return data


def _which(name: str, env: Mapping[str, str]) -> str:
    """The file `subprocess` would execute for `name` (PATH from `env`)."""
    if os.path.dirname(name):
        return name
    for directory in os.get_exec_path(env):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(2, os.strerror(2), name)


def spawn_on_pty(
    argv: Sequence[str],
    *,
    executable: str | None,
    env: Mapping[str, str],
    cwd: str | None,
    tty: str,
    stdin: int | None = None,
) -> int:
    """Start `argv` in a new session whose controlling terminal is the PTY
    slave at path `tty`; stdin is `stdin` (a pipe) when given, else the PTY.
    Returns the pid; raises OSError when the program cannot be executed."""
    libc = _libc
    assert libc, "spawn.available() first"
    path = _which(executable or argv[0], env)
    for key in env:
        if not key or "=" in key:
            raise ValueError(f"illegal environment variable name {key!r}")
    args = [_c(arg) for arg in argv]
    entries = [_c(f"{key}={value}") for key, value in env.items()]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
    c_env = (ctypes.c_char_p * (len(entries) + 1))(*entries, None)
    actions = ctypes.create_string_buffer(_OPAQUE)
    attr = ctypes.create_string_buffer(_OPAQUE)
    sigdef = ctypes.create_string_buffer(_OPAQUE)
    pid = ctypes.c_int(0)
    tty_path = _c(tty)
    check = _check
    check(libc.posix_spawn_file_actions_init(actions))
    try:
        check(libc.posix_spawnattr_init(attr))
        try:
            if stdin is None:
                check(libc.posix_spawn_file_actions_addopen(actions, 0, tty_path, os.O_RDWR, 0))
                check(libc.posix_spawn_file_actions_adddup2(actions, 0, 1))
            else:
                check(libc.posix_spawn_file_actions_adddup2(actions, stdin, 0))
                check(libc.posix_spawn_file_actions_addopen(actions, 1, tty_path, os.O_RDWR, 0))
            check(libc.posix_spawn_file_actions_adddup2(actions, 1, 2))
            check(libc.posix_spawn_file_actions_addclosefrom_np(actions, 3))
            if cwd is not None:
                check(libc.posix_spawn_file_actions_addchdir_np(actions, _c(cwd)))
            check(libc.sigemptyset(sigdef))
            for signum in (signal.SIGPIPE, signal.SIGXFSZ):
                check(libc.sigaddset(sigdef, signum))
            check(libc.posix_spawnattr_setsigdefault(attr, sigdef))
            check(libc.posix_spawnattr_setflags(attr, _SETSID | _SETSIGDEF))
            error = libc.posix_spawn(ctypes.byref(pid), _c(path), actions, attr, c_argv, c_env)
        finally:
            libc.posix_spawnattr_destroy(attr)
    finally:
        libc.posix_spawn_file_actions_destroy(actions)
    if error:
        raise OSError(error, os.strerror(error), path)
    return pid.value


def _check(result: int) -> None:
    if result == -1:  # sigemptyset/sigaddset: errno
        result = ctypes.get_errno()
    if result:
        raise OSError(result, os.strerror(result))
