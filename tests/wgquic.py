"""An HTTP/3 client for tests (aioquic, which mitmproxy already depends on), run as a script
inside a test namespace, where the installed curl speaks no HTTP/3:

    python tests/wgquic.py ADDRESS SNI PATH CAFILE [TIMEOUT]

prints one JSON line: {"status": 403, "body": "…"} or {"status": 0, "error": "…"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


class _Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.body = b""

    def quic_event_received(self, event: QuicEvent) -> None:
        for e in self.h3.handle_event(event):
            self._h3_event(e)

    def _h3_event(self, e: H3Event) -> None:
        if isinstance(e, HeadersReceived):
            self.status = int(dict(e.headers).get(b":status", b"0"))
        elif isinstance(e, DataReceived):
            self.body += e.data
        else:
            return
        if e.stream_ended and not self.done.done():
            self.done.set_result(None)


async def get(address: str, sni: str, path: str, cafile: str, timeout: float) -> dict[str, Any]:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=sni)
    config.load_verify_locations(cafile)
    async with connect(address, 443, configuration=config, create_protocol=_Client) as client:
        assert isinstance(client, _Client)
        stream = client._quic.get_next_available_stream_id()
        headers = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", sni.encode())]
        headers += [(b":path", path.encode()), (b"accept", b"text/html")]
        client.h3.send_headers(stream, headers, end_stream=True)
        client.transmit()
        await asyncio.wait_for(client.done, timeout)
        return {"status": client.status, "body": client.body.decode("utf-8", "replace")}


def main(argv: list[str]) -> None:
    address, sni, path, cafile = argv[:4]
    timeout = float(argv[4]) if len(argv) > 4 else 8.0
    try:
        result = asyncio.run(asyncio.wait_for(get(address, sni, path, cafile, timeout), timeout))
    except (TimeoutError, ConnectionError, OSError) as e:
        result = {"status": 0, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
