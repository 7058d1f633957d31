"""vroomd.webrtc's offer checks and listener options, without a browser."""

from __future__ import annotations

import pytest
from openmux.aio._http import Request
from vroomd.cli import build_parser
from vroomd.cli import main as vroomd_main
from vroomd.webrtc import (
    OfferRefused,
    WebRTCConfig,
    WebRTCService,
    config_from_args,
    ice_hosts_for,
)


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


def test_media_options_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    default = config_from_args(parser.parse_args([]))
    assert default.enabled and default.media.fps == 60 and default.media.playout_delay == (0, 0)
    config = config_from_args(
        parser.parse_args(["--no-webrtc", "--video-fps", "1", "--playout-delay", "0,100"])
    )
    assert not config.enabled and config.media.fps == 1 and config.media.idle_fps == 1
    assert config.media.playout_delay == (0, 100)
    assert WebRTCService(config, None).serve_options("ws://127.0.0.1:1") == {}
    browser = config_from_args(parser.parse_args(["--playout-delay", "browser"]))
    assert browser.media.playout_delay is None
    help_text = parser.format_help()
    for option in ("--no-webrtc", "--video-fps", "--playout-delay"):
        assert option in help_text
    for bad in (["--video-fps", "0"], ["--playout-delay", "x"], ["--playout-delay", "50,10"]):
        assert vroomd_main(["--no-auth", *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("vroomd: --") and "Traceback" not in err
