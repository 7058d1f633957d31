"""Who may open graphical sessions (GraphicalHub.authorised), without a browser."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from vroomd.graphical import GraphicalConfig, GraphicalHub


def session(path: str = "/omux/vroom", bearer: bool = False, **headers: str) -> Any:
    return SimpleNamespace(
        transport_info={"path": path, "headers": headers},
        connection=SimpleNamespace(transport_authenticated=bearer),
    )


def test_with_a_token() -> None:
    hub = GraphicalHub(GraphicalConfig(), token="s3cret")
    assert hub.authorised(session()) is not None
    assert hub.authorised(session("/omux/vroom?token=wrong")) is not None
    assert hub.authorised(session("/omux/vroom?token=")) is not None
    assert hub.authorised(session("/omux/vroom?token=s3cret")) is None
    assert hub.authorised(session("/vroom?x=1&token=s3cret")) is None
    assert hub.authorised(session(Authorization="Bearer s3cret")) is None
    assert hub.authorised(session(Authorization="Bearer nope")) is not None
    assert hub.authorised(session(Authorization="Basic s3cret")) is not None
    assert hub.authorised(session(bearer=True)) is None  # the transport checked it


def test_without_a_token_only_same_origin_pages() -> None:
    hub = GraphicalHub(GraphicalConfig(), token=None)
    assert hub.authorised(session()) is None  # not a browser: no Origin
    assert hub.authorised(session(Host="127.0.0.1:8022", Origin="http://127.0.0.1:8022")) is None
    refused = hub.authorised(session(Host="127.0.0.1:8022", Origin="https://evil.example"))
    assert refused is not None and "evil.example" in refused
    assert hub.authorised(session(Host="127.0.0.1:8022", Origin="http://localhost:8022"))
