"""Sending e-mail through the district's SMTP server: STARTTLS (or implicit TLS) with the
certificate checked, then authentication, with errors that say which server refused what."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from monitor.notify.config import SmtpModel


class DeliveryError(Exception):
    """A message was not delivered; the text says why (no secrets in it)."""


def tls_context(cfg: SmtpModel, config_dir: Path) -> ssl.SSLContext:
    """The system's trusted CAs, plus ``ca_file`` when the district names one."""
    ctx = ssl.create_default_context()
    if cfg.ca_file:
        path = Path(cfg.ca_file)
        path = path if path.is_absolute() else config_dir / path
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as e:
            raise DeliveryError(f"smtp: cannot read ca_file {path}: {e}") from None
    return ctx


def new_message(cfg: SmtpModel, to: Sequence[str], subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    msg.set_content(text)
    return msg


def send(cfg: SmtpModel, config_dir: Path, msg: EmailMessage) -> None:
    """Send ``msg`` to its To addresses; DeliveryError (naming the server) on any failure."""
    where = f"smtp server {cfg.host}:{cfg.port}"
    try:
        password = cfg.secret(config_dir, "smtp") if cfg.username else ""
    except ValueError as e:
        raise DeliveryError(str(e)) from None
    try:
        ctx = tls_context(cfg, config_dir) if cfg.security != "none" else None
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=ctx)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with client:
            client.ehlo()
            if cfg.security == "starttls":
                if not client.has_extn("starttls"):
                    raise DeliveryError(f"{where} does not offer STARTTLS")
                client.starttls(context=ctx)
                client.ehlo()
            if cfg.username:
                client.login(cfg.username, password)
            refused = client.send_message(msg)
        if refused:
            bad = ", ".join(f"{a} ({code})" for a, (code, _) in sorted(refused.items()))
            raise DeliveryError(f"{where} refused some recipients: {bad}")
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"{where} refused the login of {cfg.username!r}: {e.smtp_code}") from e
    except smtplib.SMTPRecipientsRefused as e:
        codes = ", ".join(f"{a} ({c})" for a, (c, _) in sorted(e.recipients.items()))
        raise DeliveryError(f"{where} refused every recipient: {codes}") from e
    except smtplib.SMTPResponseException as e:
        answer = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else e
        raise DeliveryError(f"{where} answered {e.smtp_code}: {str(answer)[:200]}") from e
    except smtplib.SMTPServerDisconnected as e:
        raise DeliveryError(f"{where} closed the connection: {e}") from e
    except ssl.SSLError as e:
        raise DeliveryError(f"{where}: TLS failed: {e.reason or e}") from e
    except ConnectionRefusedError as e:
        raise DeliveryError(f"{where} refused the connection") from e
    except TimeoutError as e:
        raise DeliveryError(f"{where} did not answer within {cfg.timeout:g} s") from e
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryError(f"{where}: {type(e).__name__}: {e}") from e
