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

# Each top-level command and the modules of this package that define it (and its
# subcommands), imported only when the command runs or help lists it: starting `monitor
# proxy` should not import the review app, pandas and matplotlib. tests/cli/test_cli_lazy.py
# checks this table against importing every module.
COMMANDS: dict[str, tuple[str, ...]] = {
    "catalog": ("classify", "catalog"),
    "classify": ("classify",),
    "explain": ("explain",),
    "gateway": ("gateway", "gateway_nftables", "gateway_resolver", "gateway_wireguard"),
    "incidents": ("incidents",),
    "notify": ("notify",),
    "override": ("override",),
    "policy": ("policy",),
    "proxy": ("proxy",),
    "report": ("report",),
    "review": ("review",),
    "roster": ("roster",),
    "sensor": ("sensor",),
    "status": ("status",),
    "up": ("up",),
    "users": ("users",),
}


def load_command(group: click.Group, name: str) -> None:
    """Import the modules that define ``name`` and let each register its commands."""
    for module_name in COMMANDS.get(name, ()):
        module = importlib.import_module(f"{__name__}.{module_name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(group)


class MonitorGroup(click.Group):
    """The ``monitor`` group: commands loaded when used; every exception escaping a command
    becomes one clear message."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            load_command(self, cmd_name)
        return self.commands.get(cmd_name)

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


def all_modules() -> list[str]:
    """Every command module of this package (for the test of :data:`COMMANDS`)."""
    return sorted(
        info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )
