"""One clear message for any error a command lets through (not a command module itself).

The ``monitor`` group (``monitor/cli/__init__.py``) passes every exception that escapes a
command through :func:`user_error`: a bad input file, a missing directory, a malformed value
(``ConfigError``, ``RosterError``, ``OSError``, ``UnicodeError`` and other ``ValueError``\\ s, a
``RecursionError`` or ``MemoryError`` from a pathological input, a database error) becomes a
``click.ClickException``: ``Error: <message>`` on standard error, exit status 1, no traceback.
Any other exception is a bug: it is reported in one line as an internal error (exit status 70)
and ``MONITOR_DEBUG=1`` shows its traceback. Every message is cut to
:data:`~monitor.yamlfile.MAX_MESSAGE_CHARS` characters a line.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from monitor.yamlfile import clip

DEBUG_ENV = "MONITOR_DEBUG"
EX_SOFTWARE = 70  # sysexits.h: an internal software error


class InternalError(click.ClickException):
    """An exception no command expected (a bug), shown in one line."""

    exit_code = EX_SOFTWARE


def _is_database_error(e: Exception) -> bool:
    """A SQLAlchemy error (only possible once a command imported SQLAlchemy, so the command
    line does not pay for importing it on every start)."""
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(e, SQLAlchemyError)


def debugging() -> bool:
    """MONITOR_DEBUG is set (to anything but 0): let exceptions through with their traceback."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def describe_os_error(e: OSError) -> str:
    """``path: why`` for a file-system error (``why`` alone when it names no file)."""
    why = e.strerror or str(e) or type(e).__name__
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{' → '.join(names)}: {why}" if names else why


def user_error(e: Exception) -> click.ClickException | None:
    """The click error to show for ``e``, or None to let ``e`` through unchanged (click's own
    exceptions, shortened in place; a broken pipe, which click handles; MONITOR_DEBUG=1)."""
    if isinstance(e, click.ClickException):
        if len(e.message) > len(shorter := clip(e.message)):
            vars(e)["message"] = shorter  # typed Final, but an instance attribute
        return None
    if isinstance(e, click.exceptions.Exit | click.exceptions.Abort | EOFError):
        return None
    if isinstance(e, OSError) and e.errno == errno.EPIPE:
        return None
    if debugging():
        return None
    if isinstance(e, OSError):
        message = describe_os_error(e)
    elif isinstance(e, RecursionError):
        message = "an input is nested too deeply to be read (maximum recursion depth exceeded)"
    elif isinstance(e, MemoryError):
        message = "out of memory: an input is larger than this machine can read"
    elif isinstance(e, ValueError) or _is_database_error(e):
        message = str(e) or type(e).__name__
    else:
        return InternalError(
            clip(
                f"internal error: {type(e).__name__}: {e} "
                f"(run with {DEBUG_ENV}=1 for the traceback)"
            )
        )
    return click.ClickException(clip(message))
