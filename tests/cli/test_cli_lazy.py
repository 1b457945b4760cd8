"""monitor/cli/__init__.py loads a command's modules only when it runs: its table of commands
must name every module and every command that importing all of them registers."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from monitor import cli


def tree(command: click.Command) -> object:
    if isinstance(command, click.Group):
        return {name: tree(sub) for name, sub in sorted(command.commands.items())}
    return command.name


def test_the_table_names_every_module_once_or_with_its_group() -> None:
    named = {m for modules in cli.COMMANDS.values() for m in modules}
    assert named == set(cli.all_modules())


def test_lazy_loading_gives_the_same_commands_as_importing_everything() -> None:
    eager = click.Group("eager")
    for name in cli.all_modules():
        module = importlib.import_module(f"monitor.cli.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(eager)
    lazy = cli.MonitorGroup("lazy")
    ctx = click.Context(lazy)
    for name in lazy.list_commands(ctx):
        assert lazy.get_command(ctx, name) is not None, name
    assert tree(lazy) == tree(eager)
    assert sorted(cli.COMMANDS) == sorted(eager.commands)


def test_running_one_command_does_not_import_the_others() -> None:
    probe = (
        "import sys\n"
        "from monitor.cli import main\n"
        "try:\n"
        "    main(['classify', 'www.tiktok.com'], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = [m for m in ('monitor.web.app', 'matplotlib', 'monitor.reports', 'pandas',"
        " 'monitor.web.oidc') if m in sys.modules]\n"
        "    print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "www.tiktok.com\ttiktok" in r.stdout
    assert "HEAVY []" in r.stdout, r.stdout
