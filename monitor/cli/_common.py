"""Options and helpers shared by the ``monitor`` commands (not a command module itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from monitor.cli._errors import describe_os_error
from monitor.district import District, DistrictLoader
from monitor.yamlfile import ConfigError

CATALOG_HELP = "A district catalogue file merged over the shipped one (repeatable)."


def catalog_option(help: str = CATALOG_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--catalog FILE`` (repeatable), passed to the command as ``catalogs``."""
    return click.option(
        "--catalog", "catalogs", multiple=True, type=click.Path(dir_okay=False), help=help
    )


def load_district(config: str) -> District:
    """Load a configuration directory for a CLI command, as a click error when it is bad."""
    try:
        return DistrictLoader(config).load()
    except OSError as e:
        raise click.ClickException(describe_os_error(e)) from e
    except (ConfigError, ValueError) as e:
        raise click.ClickException(str(e)) from e
