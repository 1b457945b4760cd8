"""DNS message → question names and types, over UDP or TCP (RFC 1035 §4, §4.2.2).

Reads the header and the question section: that is where a client names the host it wants.
In an answer it also collects the IPv4 and IPv6 addresses of the answer section (A and AAAA
records, whatever name a CNAME chain gave them): the pipeline uses them to name later flows
that carry no name of their own. And it follows the CNAME chain from the first question's name
(``cnames``): a name outside the catalogue that is an alias of a platform's name (a CDN host,
a custom domain) is that platform's. Compression pointers are followed with loop protection: every
pointer must point before the start of the run of labels that led to it, so a chain strictly
moves backwards and ends. Never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.sensor.model import Malformed, printable_name

HEADER = 12
MAX_NAME = 255  # octets on the wire, RFC 1035 §3.1
MAX_QUESTIONS = 16  # real queries carry one; a larger count is a broken or hostile packet
MAX_ANSWERS = 32  # answer records read from one answer
MAX_CHAIN = 16  # CNAME hops followed (RFC 1034 asks resolvers to bound them too)
TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28
CLASS_IN = 1
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
    addresses: tuple[bytes, ...] = ()  # answers only: A/AAAA record data (4 or 16 bytes)
    cnames: tuple[str, ...] = ()  # answers only: the CNAME chain from the first question


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
    labels: list[bytes] = []
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
        labels.append(msg[p + 1 : end])
        p = end
    after = p if after is None else after
    if not labels:
        return ".", after
    raw = b".".join(labels)
    if raw.count(b".") != len(labels) - 1:  # a dot inside a label: escape it per label
        return ".".join(_label_text(label) for label in labels), after
    return printable_name(raw), after


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
        response = bool(flags & 0x80)
        an = (msg[6] << 8) | msg[7]
        addresses: tuple[bytes, ...] = ()
        cnames: tuple[str, ...] = ()
        if response and an:
            addresses, cnames = _answers(msg, p, an, qs[0].name if qs else None)
        return DnsMessage(
            id=(msg[0] << 8) | msg[1],
            response=response,
            opcode=(flags >> 3) & 0x0F,
            questions=tuple(qs),
            addresses=addresses,
            cnames=cnames,
        )
    except (IndexError, ValueError):  # a bug must not take a live sensor down on one packet
        return INTERNAL


def _skip_name(msg: bytes, p: int) -> int:
    """The offset after the (possibly compressed) name at ``p``; -1 when it is cut short."""
    n = len(msg)
    while p < n:
        length = msg[p]
        if length == 0:
            return p + 1
        if length & 0xC0:
            return p + 2 if p + 2 <= n else -1  # a pointer ends the name
        p += 1 + length
    return -1


def _answers(
    msg: bytes, p: int, count: int, qname: str | None
) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    """A and AAAA record data of the answer section at ``p``, and the CNAME chain from
    ``qname`` (what can be read of them: a broken record ends the section)."""
    out: list[bytes] = []
    aliases: dict[str, str] = {}
    n = len(msg)
    for _ in range(min(count, MAX_ANSWERS)):
        owner = p
        p = _skip_name(msg, p)
        if p < 0 or p + 10 > n:
            break
        rtype = (msg[p] << 8) | msg[p + 1]
        rclass = (msg[p + 2] << 8) | msg[p + 3]
        rdlen = (msg[p + 8] << 8) | msg[p + 9]
        p += 10
        if p + rdlen > n:
            break
        if rclass == CLASS_IN:
            if (rtype == TYPE_A and rdlen == 4) or (rtype == TYPE_AAAA and rdlen == 16):
                out.append(msg[p : p + rdlen])
            elif rtype == TYPE_CNAME and qname is not None:
                alias = read_name(msg, owner)
                target = read_name(msg, p)
                if (
                    not isinstance(alias, Malformed)
                    and not isinstance(target, Malformed)
                    and target[1] <= p + rdlen
                ):
                    aliases.setdefault(alias[0], target[0])
        p += rdlen
    chain: list[str] = []
    name = qname
    while name is not None and aliases and len(chain) < MAX_CHAIN:
        name = aliases.pop(name, None)  # popped: a loop ends the chain
        if name is None or name == ".":
            break
        chain.append(name)
    return tuple(out), tuple(chain)


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
