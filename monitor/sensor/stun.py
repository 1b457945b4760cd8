"""STUN/TURN message → the REALM and SOFTWARE attributes, which can name a calling app.

Calling apps reach their relays with STUN and TURN (RFC 8489, RFC 8656) on UDP (and TCP), on
3478 and on ports of their own (443 among them). The media is encrypted, but a TURN server
names its realm in every 401 answer and the client repeats it in each authenticated request;
public captures show ``signal.org`` (Signal), ``telegram.org`` (Telegram's group and video
calls), ``turner.facebook`` (Facebook and Messenger calls) and ``viber.com`` (Viber). The
SOFTWARE attribute names the implementation, which is seldom the app (Signal's and Telegram's
relays both answer ``None``), so it only counts when it names an app of the catalogue.
WhatsApp puts neither (it uses message types and attributes of its own) and is not read here.

``parse_stun`` reads one message (RFC 3489 "classic" STUN too, which has no magic cookie,
only when the caller allows it: the sensor does on ports 3478/3479, where it is safe). Bytes
that do not hold exactly one well-formed message are not STUN as far as the sensor is
concerned, and are not counted as broken: dialects have the magic cookie but not the layout
(Microsoft's MS-TURN does not pad its attributes, WhatsApp appends bytes of its own).
``app_host`` maps a realm or software value to a host name of the platform it names, for the
classifier. Pure; never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.sensor.model import printable_name

MAGIC_COOKIE = b"\x21\x12\xa4\x42"
HEADER = 20
ATTR_REALM = 0x0014
ATTR_SOFTWARE = 0x8022  # SERVER in RFC 3489's successors' drafts
MAX_TEXT = 763  # RFC 8489 §14.9, §14.14: fewer than 128 characters, at most 763 bytes
MAX_ATTRIBUTES = 64  # read no further: real messages carry about a dozen
CLASSIC_PORTS = frozenset({3478, 3479})
# RFC 3489 message types: binding and shared secret requests, answers and errors
CLASSIC_TYPES = frozenset({0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112})
_CLASSIC_ATTRS = frozenset(range(0x0001, 0x000C)) | {ATTR_REALM, 0x8020, ATTR_SOFTWARE}

REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

#: a word of a realm or software value → a host name of the catalogue platform it names.
#: Seen in public captures: realms signal.org, telegram.org, turner.facebook, viber.com;
#: the rest are the apps' own names, which no other software would carry.
APP_WORDS: dict[str, str] = {
    "signal": "signal.org",
    "whispersystems": "signal.org",
    "ringrtc": "signal.org",  # Signal's calling library
    "telegram": "telegram.org",
    "tgcalls": "telegram.org",  # Telegram's calling library
    "facebook": "messenger.com",  # Meta's TURN servers (realm turner.facebook): calls
    "messenger": "messenger.com",
    "whatsapp": "whatsapp.net",
    "instagram": "instagram.com",
    "viber": "viber.com",
    "discord": "discord.media",
    "snapchat": "snapchat.com",
}
_WORDS = re.compile(r"[a-z0-9]+")
_ESCAPED = re.compile(r"\\\d{3}")  # a byte printable_name escaped: a separator here


@dataclass(frozen=True, slots=True)
class StunMessage:
    """The fields of a STUN message the sensor reads (``realm``/``software`` escaped text)."""

    msg_type: int
    method: int
    cls: int  # REQUEST, INDICATION, SUCCESS or ERROR
    classic: bool  # RFC 3489: no magic cookie
    realm: str | None = None
    software: str | None = None

    @property
    def response(self) -> bool:
        """Sent by the server (a success or error answer)."""
        return self.cls >= SUCCESS


def method_and_class(msg_type: int) -> tuple[int, int]:
    """RFC 8489 §5: the 12 method bits and 2 class bits interleaved in the type."""
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    return method, ((msg_type >> 4) & 0x01) | ((msg_type >> 7) & 0x02)


def parse_stun(data: bytes, *, classic: bool = False, stream: bool = False) -> StunMessage | None:
    """Parse the STUN message at the start of ``data``.

    None when ``data`` is not STUN. Over UDP the message fills the datagram exactly; with
    ``stream`` (TCP) it may be followed by more. ``classic`` also accepts RFC 3489 messages
    (no magic cookie), which are recognised only by their type and attributes.
    """
    n = len(data)
    if n < HEADER or data[0] & 0xC0:
        return None
    mlen = (data[2] << 8) | data[3]
    end = HEADER + mlen
    modern = data[4:8] == MAGIC_COOKIE
    msg_type = (data[0] << 8) | data[1]
    if not modern and (not classic or msg_type not in CLASSIC_TYPES):
        return None
    if end > n or (end < n and not stream):
        return None  # a datagram that is not one message (WhatsApp adds bytes of its own)
    realm = software = None
    p = HEADER
    for _ in range(MAX_ATTRIBUTES):
        if p + 4 > end:
            break
        atype = (data[p] << 8) | data[p + 1]
        alen = (data[p + 2] << 8) | data[p + 3]
        vend = p + 4 + alen
        if vend > end or (not modern and atype not in _CLASSIC_ATTRS):
            return None
        if atype == ATTR_REALM and realm is None and 0 < alen <= MAX_TEXT:
            realm = printable_name(data[p + 4 : vend])
        elif atype == ATTR_SOFTWARE and software is None and 0 < alen <= MAX_TEXT:
            software = printable_name(data[p + 4 : vend])
        p = p + 4 + ((alen + 3) & ~3)  # values are padded to 4 bytes
        if vend == end:
            p = end  # the last one unpadded, as WhatsApp sends them
    else:
        p = end  # more attributes than we read: the rest is not looked at
    if p != end:
        return None
    method, cls = method_and_class(msg_type)
    return StunMessage(msg_type, method, cls, not modern, realm, software)


def app_host(text: str | None) -> str | None:
    """The catalogue host name of the app a realm or software value names, or None."""
    if not text:
        return None
    for word in _WORDS.findall(_ESCAPED.sub(" ", text.lower())):
        host = APP_WORDS.get(word)
        if host is not None:
            return host
    return None
