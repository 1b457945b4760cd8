"""No client addresses in the proxy's own log.

mitmproxy prefixes its connection messages with the client's address and port
(``[127.0.0.13:50412] … does not trust the proxy's certificate for www.tiktok.com``): under
systemd those lines land in the journal, where they link a device to the sites it opened,
outside the pseudonymised store and its retention. This addon puts a filter on every handler
of the root logger that rewrites each record before it is written:

* the client of the record (mitmproxy's ``extra={"client": …}``) and every IP address in the
  message text are replaced, except the proxy's own listen addresses and the unspecified ones;
* by default (``monitor_log_clients=pseudonym``) with ``ip-`` and 8 hex digits of an HMAC
  keyed with a random key made at start and never stored: lines of one device can be followed
  within one run, but not joined with anything else (not the incident pseudonyms, not another
  run); ``none`` drops them (``client``); ``address`` keeps them, for a test bench only.

Host names stay: a server name without a client links nobody to it. Private keys go, in every
mode: in WireGuard mode mitmproxy logs each server's client configuration at start
(``PrivateKey = …``), and with that key anyone reading the journal could pose as the device.

mitmdump's flow dump (``flow_detail``) is printed, not logged, and shows each request's client
and whole URL, query string included: unless ``monitor_log_clients=address``, it is turned off
(``flow_detail=0``, as ``monitor proxy`` sets it anyway), with a warning saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from typing import Any

from mitmproxy import ctx, exceptions

MODES = ("pseudonym", "none", "address")
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"
_IPV6 = (
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)
_ADDRESS = re.compile(f"{_IPV4}|{_IPV6}")
_KEEP = frozenset({"0.0.0.0", "::"})  # and the proxy's listen address
_PRIVATE_KEY = re.compile(r"(PrivateKey\s*=\s*)[A-Za-z0-9+/]{42,43}=*")
HIDDEN_KEY = r"\1(hidden: in the WireGuard key file)"


class AddressScrubber(logging.Filter):
    """Rewrites client addresses in log records (see the module docstring)."""

    def __init__(self, mode: str = "pseudonym", keep: frozenset[str] = _KEEP) -> None:
        super().__init__()
        self.mode = mode
        self.keep = keep
        self._key = secrets.token_bytes(32)

    def name_of(self, address: str) -> str:
        if self.mode == "none":
            return "client"
        digest = hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()
        return f"ip-{digest[:8]}"

    def _replace(self, m: re.Match[str]) -> str:
        text = m.group(0)
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return text
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if str(ip) in self.keep or ip.is_unspecified:
            return text
        return self.name_of(str(ip))

    def filter(self, record: logging.LogRecord) -> bool:
        client = getattr(record, "client", None)
        if client and self.mode != "address":
            # mitmproxy's formatter prints (host, port) as host:port
            record.client = (self.name_of(_unmapped(str(client[0]))), client[1])
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logging module's to report
            return True
        scrubbed = _PRIVATE_KEY.sub(HIDDEN_KEY, message)
        if self.mode != "address":
            scrubbed = _ADDRESS.sub(self._replace, scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def _unmapped(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class LogPrivacy:
    def __init__(self) -> None:
        self.scrubber = AddressScrubber()
        self._install()

    def load(self, loader: Any) -> None:
        loader.add_option(
            "monitor_log_clients",
            str,
            "pseudonym",
            "Client addresses in the proxy's log: pseudonym (a per-run keyed hash, the "
            "default), none (dropped) or address (kept: for a test bench only).",
        )

    def configure(self, updated: set[str]) -> None:
        if "monitor_log_clients" in updated:
            mode = ctx.options.monitor_log_clients
            if mode not in MODES:
                raise exceptions.OptionsError(
                    f"monitor_log_clients: {mode!r} is not one of {', '.join(MODES)}"
                )
            self.scrubber.mode = mode
        if {"monitor_log_clients", "flow_detail"} & updated and self.scrubber.mode != "address":
            if getattr(ctx.options, "flow_detail", 0):
                logging.getLogger("monitor").warning(
                    "monitor: flow_detail set to 0: mitmdump's flow dump prints client addresses "
                    "and whole URLs (monitor_log_clients=address keeps it, for a test bench)"
                )
                ctx.options.update(flow_detail=0)
        if "listen_host" in updated or "mode" in updated:
            listen = {str(getattr(ctx.options, "listen_host", "") or "")}
            self.scrubber.keep = _KEEP | frozenset(a for a in listen if a)
        self._install()

    def running(self) -> None:
        self._install()  # handlers added while mitmproxy started

    def _install(self) -> None:
        for handler in logging.getLogger().handlers:
            if self.scrubber not in handler.filters:
                handler.addFilter(self.scrubber)

    def done(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self.scrubber)
