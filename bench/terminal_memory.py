"""vroomd's memory per idle terminal session: RSS of the vroomd process with
N sessions open (each running `sleep`, so the programs' own memory is not
counted: it is not vroomd's), minus its RSS with one connection and no
session, divided by N. 100 sessions per OpenMux connection (a connection has
254 channel ids, two per session).

Run: .venv/bin/python bench/terminal_memory.py [sessions]
"""

from __future__ import annotations

import asyncio
import sys
import time

from _terminal import Vroomd, compile_packages, emit

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
PER_CONNECTION = 100


async def open_sessions(url: str, token: str, count: int) -> tuple[object, int]:
    import openmux.aio
    from openmux import MessageReceived
    from vroom_terminal import events as ev
    from vroom_terminal.capabilities import CapabilityOffer
    from vroom_terminal.client import TerminalClient

    session = await openmux.aio.connect(url, timeout=30)
    client = TerminalClient(session.connection, offer=CapabilityOffer())
    ready: set[str] = set()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    processing = [False]

    def on(event: object) -> None:
        key = getattr(event, "session", "")
        if isinstance(event, ev.Negotiated):
            if event.select.auth.required:
                client.authenticate(token=token, session=key)
            else:
                client.request_pty(session=key)
        elif isinstance(event, ev.AuthResult) and event.ok:
            client.request_pty(session=key)
        elif isinstance(event, ev.PtyGranted):
            client.exec("exec sleep 3600", session=key)
        elif isinstance(event, ev.PtyReady):
            ready.add(key)
            if len(ready) == count and not done.done():
                done.set_result(None)
        elif isinstance(event, ev.PtyRefused | ev.SessionClosed) and not done.done():
            done.set_exception(RuntimeError(f"session {key}: {event}"))

    def tap(events: list[object]) -> list[object]:
        processing[0] = True
        for event in events:
            for result in client.handle_event(event):  # type: ignore[arg-type]
                on(result)
        processing[0] = False
        return [e for e in events if type(e) is not MessageReceived]

    session.add_event_tap(tap)  # type: ignore[arg-type]
    for number in range(1, count + 1):
        client.open_session("" if number == 1 else f"#{number}")
    session.flush()
    await asyncio.wait_for(done, 300)
    return session, len(ready)


async def measure(vroomd: Vroomd) -> None:
    import openmux.aio

    url = vroomd.url("tcp")
    warm = await openmux.aio.connect(url, timeout=30)  # one connection, no session
    await asyncio.sleep(1)
    base = vroomd.rss_kib()
    sessions = []
    opened = 0
    for start in range(0, SESSIONS, PER_CONNECTION):
        count = min(PER_CONNECTION, SESSIONS - start)
        try:
            session, n = await open_sessions(url, vroomd.token, count)
        except Exception as exc:  # out of PTYs, processes...: report what fit
            print(f"# stopped at {opened} sessions: {exc}", file=sys.stderr)
            break
        sessions.append(session)
        opened += n
    await asyncio.sleep(2)
    rss = vroomd.rss_kib()
    emit("terminal_idle_sessions", opened, "sessions")
    emit("terminal_vroomd_rss_base", base, "KiB")
    emit("terminal_vroomd_rss_with_sessions", rss, "KiB")
    emit("terminal_rss_per_idle_session", (rss - base) / max(1, opened), "KiB")
    for session in sessions:
        await session.close()  # type: ignore[attr-defined]
    await warm.close()


def main() -> None:
    compile_packages()
    vroomd = Vroomd("--max-sessions", str(SESSIONS + 10), "--max-connections", "100")
    try:
        start = time.perf_counter()
        asyncio.run(measure(vroomd))
        print(f"# {time.perf_counter() - start:.1f} s", file=sys.stderr)
    finally:
        vroomd.stop()


if __name__ == "__main__":
    main()
