"""The district's webhook: a JSON POST signed with HMAC-SHA256, so the receiver can check that
the monitor sent it and that it is fresh.

Headers: ``X-Monitor-Timestamp`` (Unix seconds) and ``X-Monitor-Signature: sha256=<hex>``, the
HMAC-SHA256 under the shared secret of ``<timestamp>.`` followed by the raw body. A receiver
recomputes it, compares in constant time, and refuses timestamps older than a few minutes.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import httpx

from monitor.notify.mail import DeliveryError

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: True when ``header`` is the signature of ``body`` at ``timestamp``."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def post(url: str, payload: dict[str, Any], secret: str, timeout: float) -> int:
    """POST ``payload`` as JSON; the status code (2xx), else DeliveryError."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "student-monitor-notify",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature(secret, ts, body),
    }
    host = httpx.URL(url).host
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            r = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as e:
        raise DeliveryError(f"webhook {host} did not answer within {timeout:g} s") from e
    except httpx.HTTPError as e:
        raise DeliveryError(f"webhook {host}: {type(e).__name__}: {e}") from e
    if not 200 <= r.status_code < 300:
        raise DeliveryError(f"webhook {host} answered HTTP {r.status_code}")
    return r.status_code
