"""vroomd.webrtc's offer checks and listener options, without a browser."""

from __future__ import annotations

import pytest
from openmux.aio._http import Request
from vroomd.webrtc import OfferRefused, WebRTCConfig, WebRTCService, ice_hosts_for


def offer(headers: dict[str, str], query: str = "") -> Request:
    return Request("POST", "/omux/vroom/offer", query, headers, b"{}")


def test_token_as_bearer_or_query() -> None:
    service = WebRTCService(WebRTCConfig(), token="s3cret")
    service.check(offer({"authorization": "Bearer s3cret"}))
    service.check(offer({}, "token=s3cret"))
    for bad in (offer({}), offer({"authorization": "Bearer nope"}), offer({}, "token=")):
        with pytest.raises(OfferRefused) as refused:
            service.check(bad)
        assert refused.value.status == 401


def test_without_a_token_foreign_pages_are_refused() -> None:
    service = WebRTCService(WebRTCConfig(), token=None)
    service.check(offer({"host": "127.0.0.1:8022", "origin": "http://127.0.0.1:8022"}))
    service.check(offer({"host": "127.0.0.1:8022"}))  # not a browser page
    with pytest.raises(OfferRefused) as refused:
        service.check(offer({"host": "127.0.0.1:8022", "origin": "https://evil.example"}))
    assert refused.value.status == 403


def test_serve_options() -> None:
    service = WebRTCService(WebRTCConfig(), token=None)
    options = service.serve_options("ws://127.0.0.1:8022/omux/vroom")
    assert options["webrtc"] is True and options["ice_hosts"] == ["127.0.0.1"]
    assert options["peer_connection"] == service.prepare
    assert service.serve_options("wss://0.0.0.0:8443")["ice_hosts"] is None
    assert service.serve_options("tcp://127.0.0.1:2222") == {}
    assert WebRTCService(WebRTCConfig(enabled=False), None).serve_options("ws://h:1") == {}
    assert ice_hosts_for("::1") == ["::1"] and ice_hosts_for("localhost") is None
