"""addons.logprivacy and addons.limits in process: what the scrubber rewrites, and the options'
errors."""

from __future__ import annotations

import logging

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.limits import Limits
from addons.logprivacy import AddressScrubber, LogPrivacy
from addons.runtime import Runtime


def scrub(message: str, mode: str = "pseudonym", client: object = None) -> logging.LogRecord:
    s = AddressScrubber(mode, keep=frozenset({"0.0.0.0", "::", "192.0.2.1"}))
    record = logging.LogRecord("mitmproxy.proxy.server", logging.INFO, "f", 1, message, None, None)
    if client is not None:
        record.client = client
    assert s.filter(record) is True  # never drops a line
    return record


@pytest.mark.parametrize(
    ("message", "gone", "kept"),
    [
        ("Client(198.51.100.7:5000, state=open) closed", ["198.51.100.7"], ["Client(", ":5000"]),
        ("from ::ffff:198.51.100.7 and 198.51.100.7.", ["198.51.100.7"], ["from ", " and "]),
        ("[2001:db8::7]:443 and 2001:db8:0:0:0:0:0:8.", ["2001:db8"], ["]:443"]),
        ("proxy listening at 192.0.2.1:8080", [], ["192.0.2.1:8080"]),  # the proxy's own
        ("listening at 0.0.0.0:8080 and [::]:8080", [], ["0.0.0.0:8080", "[::]:8080"]),
        ("12:34:56.789 mitmproxy 12.3.1 at 10:30", [], ["12:34:56.789", "12.3.1", "10:30"]),
        ("does not trust the proxy's certificate for www.tiktok.com", [], ["www.tiktok.com"]),
    ],
)
def test_addresses_in_the_text_are_replaced(message: str, gone: list[str], kept: list[str]) -> None:
    text = scrub(message).getMessage()
    for g in gone:
        assert g not in text
    for k in kept:
        assert k in text
    if gone:
        assert "ip-" in text


def test_the_same_address_gets_the_same_pseudonym_within_a_run() -> None:
    s = AddressScrubber()
    assert s.name_of("198.51.100.7") == s.name_of("198.51.100.7") != s.name_of("198.51.100.8")
    assert AddressScrubber().name_of("198.51.100.7") != s.name_of("198.51.100.7")  # new key


def test_the_record_client_is_replaced_and_modes_differ() -> None:
    r = scrub("client connect", client=("::ffff:198.51.100.7", 50412))
    assert r.client[0].startswith("ip-") and r.client[1] == 50412  # type: ignore[attr-defined]
    assert scrub("client connect", "none", ("198.51.100.7", 1)).client == ("client", 1)  # type: ignore[attr-defined]
    assert scrub("from 198.51.100.7", "none").getMessage() == "from client"
    assert scrub("from 198.51.100.7", "address").getMessage() == "from 198.51.100.7"


def test_the_filter_sits_on_every_root_handler_and_leaves_with_the_addon() -> None:
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        lp = LogPrivacy()
        assert lp.scrubber in handler.filters
        lp.done()
        assert lp.scrubber not in handler.filters
    finally:
        logging.getLogger().removeHandler(handler)


def test_bad_options_are_refused() -> None:
    lp = LogPrivacy()
    limits = Limits(Runtime())
    try:
        with taddons.context(lp, limits) as tctx:
            with pytest.raises(exceptions.OptionsError, match="monitor_log_clients"):
                tctx.configure(lp, monitor_log_clients="everything")
            with pytest.raises(exceptions.OptionsError, match="monitor_header_timeout"):
                tctx.configure(limits, monitor_header_timeout="soon")
            with pytest.raises(exceptions.OptionsError, match="monitor_max_client_connections"):
                tctx.configure(limits, monitor_max_client_connections=-1)
            tctx.configure(limits, monitor_header_timeout="2.5", monitor_max_client_connections=0)
            assert (limits.header_timeout, limits.max_per_address) == (2.5, 0)
    finally:
        lp.done()
