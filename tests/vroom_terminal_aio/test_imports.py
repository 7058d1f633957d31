"""The asyncio client stays out of the sans-IO modules and of `vroom term`'s start."""

from __future__ import annotations

from vterm_support import modules_after


def test_the_sans_io_modules_do_not_import_asyncio() -> None:
    loaded = modules_after(
        "import vroom_terminal, vroom_terminal.client, vroom_terminal.server, "
        "vroom_terminal.events, vroom_terminal.flow, vroom_terminal.errors"
    )
    assert "asyncio" not in loaded
    assert "vroom_terminal.aio" not in loaded


def test_vroom_term_does_not_import_the_client_api() -> None:
    loaded = modules_after("import vroom_terminal.cli, vroom_terminal.termloop")
    assert not {m for m in loaded if m.startswith("vroom_terminal.aio")}


def test_the_client_api_imports_no_server() -> None:
    loaded = modules_after("import vroom_terminal.aio")
    assert "vroom_terminal.server" not in loaded
