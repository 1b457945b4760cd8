"""The ``monitor`` command. Each module in this package adds its commands to the group:
a module defines ``register(group: click.Group) -> None``. The top layer: may import
anything.

An error a command lets through is shown as one message without a traceback
(:mod:`monitor.cli._errors`)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import click

from monitor import __version__
from monitor.cli._errors import user_error


class MonitorGroup(click.Group):
    """The ``monitor`` group: every exception escaping a command becomes one clear message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            shown = user_error(e)
            if shown is None:
                raise
            raise shown from e


@click.group(
    cls=MonitorGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="monitor")
def main() -> None:
    """Student activity monitor: classify, explain and enforce district platform policy."""


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(main)


_register_all()
