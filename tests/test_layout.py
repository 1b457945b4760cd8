"""The package layout: stages in layers, imports only downwards, no cycles, short classes.

Reads every import of ``monitor/`` and ``addons/`` from the source (function-level and
``TYPE_CHECKING`` imports included: a lazy import is still a dependency). ARCHITECTURE.md
explains the layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top first. A module may import its own package, or packages of lower layers; packages that
# share a layer are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("monitor.__main__",),
    ("monitor.cli",),
    ("addons",),
    ("monitor.web", "monitor.sensor", "monitor.gateway"),
    ("monitor.flow", "monitor.reports"),
    ("monitor.district",),
    ("monitor.notify",),
    ("monitor.rules", "monitor.incidents"),
    ("monitor.platforms", "monitor.people"),
    ("monitor.model", "monitor.yamlfile", "monitor"),
)
MAX_CLASS_LINES = 350


def unit_of(module: str) -> str:
    """The layer entry a module belongs to: its longest listed prefix."""
    best = ""
    for layer in LAYERS:
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
                best = unit
    if not best:
        raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")
    return best


def layer_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def module_name(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: str, source: str, modules: set[str] | None = None) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a project module in ``source``.

    ``from pkg import name`` imports ``pkg.name`` when that is one of ``modules``, else ``pkg``.
    """
    tree = ast.parse(source, path)
    me = module_name(path)
    package = me if path.endswith("__init__.py") else me.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if modules and sub in modules else base))
    found = dict.fromkeys((line, m) for line, m in out if m.split(".")[0] in ("monitor", "addons"))
    return list(found)


def sources(roots: Iterable[str] = ("monitor", "addons")) -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
        for root in roots
        for p in sorted((ROOT / root).rglob("*.py"))
    }


def graph(srcs: Mapping[str, str]) -> dict[str, set[str]]:
    """module → the project modules it imports (names that are not modules are dropped)."""
    known = {module_name(p) for p in srcs}
    edges: dict[str, set[str]] = {}
    for path, text in srcs.items():
        me = module_name(path)
        edges[me] = {m for _, m in imports_of(path, text, known) if m in known and m != me}
    return edges


def upward_imports(srcs: Mapping[str, str]) -> list[str]:
    """Every import that climbs a layer or crosses to a sibling package."""
    known = {module_name(p) for p in srcs}
    problems = []
    for path, text in srcs.items():
        me = unit_of(module_name(path))
        for line, target in imports_of(path, text, known):
            if target not in known:
                continue
            them = unit_of(target)
            if them == me:
                continue
            if layer_of(them) < layer_of(me):
                problems.append(f"{path}:{line}: {me} imports {target} from a higher layer")
            elif layer_of(them) == layer_of(me):
                problems.append(f"{path}:{line}: {me} imports its sibling {target}")
    return problems


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_belongs_to_a_layer() -> None:
    for path in sources():
        unit_of(module_name(path))


def test_no_upward_or_sideways_imports() -> None:
    assert upward_imports(sources()) == []


def test_no_import_cycles() -> None:
    assert cycles(graph(sources())) == []


@pytest.mark.parametrize(
    ("path", "line", "expected"),
    [
        ("monitor/model.py", "from monitor.cli import main", "from a higher layer"),
        ("monitor/rules/policy.py", "from monitor.rules.decide import decide", None),
        ("monitor/platforms/classify.py", "from monitor.people import identity", "sibling"),
        ("monitor/rules/decide.py", "from monitor.flow.engine import plan_connection", "higher"),
        ("monitor/incidents/events.py", "from monitor.rules import policy", "sibling"),
        ("monitor/flow/engine.py", "from monitor.people.roster import load_roster", None),
    ],
)
def test_the_checks_catch_a_new_bad_import(path: str, line: str, expected: str | None) -> None:
    srcs = sources()
    srcs[path] += f"\n\ndef _added() -> None:\n    {line}  # a lazy import counts too\n"
    found = upward_imports(srcs)
    if expected is None:  # allowed by the layers; policy → decide closes a cycle instead
        assert all(path not in p for p in found)
        if "decide" in line:
            assert any("monitor.rules.decide" in c for c in cycles(graph(srcs)))
    else:
        assert len(found) == 1 and found[0].startswith(path) and expected in found[0]


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for path, text in sources().items():
        if not path.endswith("__init__.py"):
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        assert len(doc) > 40, f"{path}: say what the package owns and what it may import"


def test_every_module_starts_with_what_it_is_for() -> None:
    for path, text in sources().items():
        doc = ast.get_docstring(ast.parse(text))
        if path.endswith("__init__.py") and not text.strip():
            continue
        assert doc, f"{path}: start with one sentence on what the module is for"


def test_no_class_grows_past_its_seams() -> None:
    long = []
    for path, text in sources().items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_CLASS_LINES:
                    long.append(f"{path}:{node.lineno}: class {node.name} has {n} lines")
    assert long == []
