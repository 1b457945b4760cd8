"""The systemd units of deploy/systemd/ as tests run them: a unit file read as systemd reads it
(sections, repeated keys, backslash continuations), and an Exec line turned into the argv
systemd would run (specifiers ``%i``, ``%I``, ``%n``, ``%%``; ``$$`` to ``$``; quoting), with
the install paths moved to where the test has them (``/opt/student-monitor`` → the checkout,
``/etc/student-monitor`` → a test district).

Anything else systemd would expand (``$VAR``, ``${VAR}``, other specifiers) is refused rather
than guessed, so a unit that starts using it fails here first.

    unit = Unit.read(ROOT / "deploy/systemd/student-monitor-worker@.service", instance="1")
    argv = unit.command("ExecStart", {"/opt/student-monitor": str(ROOT), …})
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_SPECIFIER = re.compile(r"%(.)")
_VARIABLE = re.compile(r"(?<!\$)\$(?!\$)")


@dataclass
class Unit:
    path: Path
    instance: str = ""
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path, instance: str = "") -> Unit:
        unit = cls(path, instance)
        section = ""
        pending = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith(("#", ";"))):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                unit.sections.setdefault(section, [])
                continue
            key, sep, value = line.partition("=")
            if not sep or not section:
                raise ValueError(f"{path}: not a unit file line: {raw!r}")
            unit.sections[section].append((key.strip(), value.strip()))
        return unit

    @property
    def name(self) -> str:
        if self.instance and self.path.name.endswith("@.service"):
            return self.path.name.replace("@.service", f"@{self.instance}.service")
        return self.path.name

    def values(self, key: str, section: str = "Service") -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, key: str, section: str = "Service") -> str:
        found = self.values(key, section)
        if len(found) != 1:
            raise KeyError(f"{self.path}: [{section}] {key}: {len(found)} values")
        return found[0]

    def _specifiers(self, text: str) -> str:
        table = {"i": self.instance, "I": self.instance, "n": self.name, "%": "%"}

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in table:
                raise ValueError(f"{self.path}: specifier %{m.group(1)} is not handled here")
            return table[m.group(1)]

        return _SPECIFIER.sub(sub, text)

    def command(
        self, key: str, moves: Mapping[str, str] | None = None, index: int = 0
    ) -> list[str]:
        """The argv of the ``index``-th ``key`` line (ExecStart, ExecStartPost, …)."""
        line = self.values(key)[index]
        line = line.lstrip("-@+!:")  # exec prefixes: not emulated
        if _VARIABLE.search(line):
            raise ValueError(f"{self.path}: {key} uses environment substitution: not handled")
        argv = [self._specifiers(a).replace("$$", "$") for a in shlex.split(line)]
        for old, new in (moves or {}).items():
            argv = [a.replace(old, new) for a in argv]
        return argv
