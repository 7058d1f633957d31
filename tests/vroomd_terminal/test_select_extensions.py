"""What vroomd grants in CAPABILITY_SELECT: only what it implements. It
neither compresses nor decompresses pty data, so a client offering
`zstd_compression` must not get it (it would then send ZSTD_DATA that vroomd
drops)."""

from __future__ import annotations

import pytest
from vterm_support import ApiClient, VroomdProcess


@pytest.mark.parametrize("scheme", ["ws", "tcp"])
async def test_zstd_offered_is_not_granted(vroomd: VroomdProcess, scheme: str) -> None:
    from vroom_terminal import events as ev
    from vroom_terminal.capabilities import CapabilityOffer, ExtensionsOffer

    api = await ApiClient.connect(vroomd.url(scheme), vroomd.token)
    api.client.default_offer = CapabilityOffer(
        extensions=ExtensionsOffer(
            flow_control=1024 * 1024, zstd_compression=True, structured_keys=True, reconnect=True
        )
    )
    state = api.open(command="printf ok")
    await api.wait_exit()
    select = next(e for e in state.events if isinstance(e, ev.Negotiated)).select
    assert select.extensions.zstd_compression is False
    assert select.extensions.structured_keys is False and select.extensions.reconnect is False
    assert select.extensions.flow_control == 1024 * 1024
    assert bytes(state.output) == b"ok" and state.exit == (0, None, False)
    await api.close()
