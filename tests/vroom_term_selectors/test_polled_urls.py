"""openmux.urls.split_url reads a client's URLs as urllib's urlsplit does
(it replaces it on `vroom term`'s start-up path); bad ones are ValueErrors."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openmux.urls import split_url

HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost", "Example.COM", "[::1]", "[FE80::1]", ""]),
    st.from_regex(r"[a-zA-Z0-9.-]{1,20}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["ws", "WSS", "tcp", "tls", "quic"]),
    st.sampled_from(["", "user@", "u:p@"]),
    HOSTS,
    st.one_of(st.none(), st.integers(min_value=0, max_value=65535)),
    st.from_regex(r"(/[a-zA-Z0-9._~-]{0,8}){0,3}", fullmatch=True),
    st.from_regex(r"(\?[a-z0-9=&]{0,10})?(#[a-z]{0,5})?", fullmatch=True),
)
def test_as_urlsplit_reads_them(
    scheme: str, user: str, host: str, port: int | None, path: str, rest: str
) -> None:
    url = f"{scheme}://{user}{host}{'' if port is None else f':{port}'}{path}{rest}"
    ours, theirs = split_url(url), urlsplit(url)
    assert (ours.scheme, ours.host or None, ours.port, ours.path, ours.query) == (
        theirs.scheme, theirs.hostname, theirs.port, theirs.path, theirs.query,
    )  # fmt: skip


@pytest.mark.parametrize(
    "url", ["ws://h:65536", "ws://h:x", "ws://h:-1", "ws://[::1", "ws://[::1]x", "host:22"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_is_a_value_error(text: str) -> None:
    try:
        split_url(text)
    except ValueError:
        pass
