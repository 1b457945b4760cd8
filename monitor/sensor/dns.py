"""DNS message → question names and types, over UDP or TCP (RFC 1035 §4, §4.2.2).

Reads the header and the question section only: that is where a client names the host it
wants. Compression pointers are followed with loop protection: every pointer must point before
the start of the run of labels that led to it, so a chain strictly moves backwards and ends.
Never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Malformed, printable_name

HEADER = 12
MAX_NAME = 255  # octets on the wire, RFC 1035 §3.1
MAX_QUESTIONS = 16  # real queries carry one; a larger count is a broken or hostile packet
MAX_HOPS = 64

TRUNCATED = Malformed("dns_truncated")
POINTER_LOOP = Malformed("dns_pointer_loop")
BAD_LABEL = Malformed("dns_bad_label")
NAME_TOO_LONG = Malformed("dns_name_too_long")
TOO_MANY_QUESTIONS = Malformed("dns_too_many_questions")
INTERNAL = Malformed("dns_unparsable")

OPCODE_QUERY = 0


@dataclass(frozen=True, slots=True)
class Question:
    name: str  # lowercased, no trailing dot ("." for the root); odd bytes escaped as \DDD
    qtype: int
    qclass: int


@dataclass(frozen=True, slots=True)
class DnsMessage:
    id: int
    response: bool
    opcode: int
    questions: tuple[Question, ...]


def _label_text(label: bytes) -> str:
    text = printable_name(label)
    # a dot inside a label is data, not a separator
    return text.replace(".", "\\046") if b"." in label else text


def read_name(msg: bytes, pos: int) -> tuple[str, int] | Malformed:
    """Read the (possibly compressed) name at ``pos``; return it and the offset after it."""
    n = len(msg)
    p = pos
    run_start = pos  # start of the current run of labels; the next pointer must go before it
    after: int | None = None
    hops = 0
    wire = 0
    labels: list[str] = []
    while True:
        if p >= n:
            return TRUNCATED
        length = msg[p]
        if length == 0:
            p += 1
            break
        top = length & 0xC0
        if top == 0xC0:
            if p + 1 >= n:
                return TRUNCATED
            target = ((length & 0x3F) << 8) | msg[p + 1]
            if after is None:
                after = p + 2
            hops += 1
            if target >= run_start or hops > MAX_HOPS:
                return POINTER_LOOP
            p = run_start = target
            continue
        if top:
            return BAD_LABEL  # 0x40/0x80: extended label types, obsolete (RFC 6891 §5)
        end = p + 1 + length
        if end > n:
            return TRUNCATED
        wire += length + 1
        if wire + 1 > MAX_NAME:
            return NAME_TOO_LONG
        labels.append(_label_text(msg[p + 1 : end]))
        p = end
    return (".".join(labels) if labels else "."), (p if after is None else after)


def parse_dns(msg: bytes) -> DnsMessage | Malformed:
    """Parse one DNS message (as carried in a UDP datagram)."""
    try:
        if len(msg) < HEADER:
            return TRUNCATED
        flags = msg[2]
        qd = (msg[4] << 8) | msg[5]
        if qd > MAX_QUESTIONS:
            return TOO_MANY_QUESTIONS
        p = HEADER
        qs: list[Question] = []
        for _ in range(qd):
            got = read_name(msg, p)
            if isinstance(got, Malformed):
                return got
            name, p = got
            if p + 4 > len(msg):
                return TRUNCATED
            qs.append(Question(name, (msg[p] << 8) | msg[p + 1], (msg[p + 2] << 8) | msg[p + 3]))
            p += 4
        return DnsMessage(
            id=(msg[0] << 8) | msg[1],
            response=bool(flags & 0x80),
            opcode=(flags >> 3) & 0x0F,
            questions=tuple(qs),
        )
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return INTERNAL


def parse_dns_tcp(data: bytes) -> list[DnsMessage | Malformed]:
    """Parse the length-prefixed DNS messages in one TCP payload (RFC 1035 §4.2.2).

    A message cut off at the end of the segment gives ``dns_truncated``; the sensor does not
    reassemble DNS over TCP (queries fit one segment in practice).
    """
    out: list[DnsMessage | Malformed] = []
    p = 0
    while p < len(data):
        if p + 2 > len(data):
            out.append(TRUNCATED)
            break
        n = (data[p] << 8) | data[p + 1]
        p += 2
        if p + n > len(data):
            out.append(TRUNCATED)
            break
        out.append(parse_dns(data[p : p + n]))
        p += n
    return out
