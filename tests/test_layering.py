"""Guards of the house (docs/architecture.md), read from the source with ``ast``, nothing imported:

1. typer, rich and click only in ``greenbench/cli/``, and nothing outside it imports the CLI;
2. the analysis stages (tradeoff, price, compare, report, carbon) never import the measuring
   stages (measure, meters, workloads): they work on a profile file alone;
3. no import cycle between modules (imports inside functions included: a lazy import that
   holds a cycle together is still a cycle);
4. no private name (a leading underscore) imported from another module of greenbench, neither
   ``from X import _y`` nor ``X._y`` on an imported module;
5. each package imports only the packages the table of docs/architecture.md allows it (``ALLOWED``).

Each test lists every finding, one per line, as ``module (file:line): what``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "greenbench"
UI_LIBRARIES = ("typer", "rich", "click")
ANALYSIS = ("tradeoff", "price", "compare", "report", "carbon")
MEASURING = ("measure", "meters", "workloads", "serving")
TOP = "(top)"  # errors, units, methods, stats, the version: every stage may import them
# What each package may import besides the top level: the table of docs/architecture.md.
ALLOWED = {
    TOP: (),
    "measure": ("meters", "workloads", "serving", "profile", "carbon"),
    "meters": (),
    "serving": (),
    "workloads": ("measure.zoo",),  # the validated ladder entries, nothing else of measuring
    "profile": (),
    "carbon": (),
    "tradeoff": ("profile",),
    "price": ("tradeoff", "carbon", "profile"),
    "compare": ("profile",),
    "report": ("compare", "tradeoff", "profile"),
    "cli": ("*",),
    "data": (),  # bundled files, no code
}


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the module imported (absolute), e.g. "greenbench.carbon.trace" or "typer"
    names: tuple[str, ...]  # (name,) for ``from target import name``; () for ``import target``
    binds: tuple[str, str]  # (local name, what it names): ``import a.b`` binds a to a


@dataclass
class Module:
    name: str  # "greenbench.carbon.trace"
    path: str  # "greenbench/carbon/trace.py"
    is_package: bool
    imports: list[Import] = field(default_factory=list)
    private_attributes: list[tuple[int, str, str]] = field(default_factory=list)  # (line, local name, attr)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def parse_package(root: Path) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        m = Module(module_name(root, path), str(path.relative_to(root.parent)), path.name == "__init__.py")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):  # every import, at the top or inside a function
            if isinstance(node, ast.Import):
                for a in node.names:
                    binds = (a.asname, a.name) if a.asname else (a.name.split(".")[0], a.name.split(".")[0])
                    m.imports.append(Import(node.lineno, a.name, (), binds))
            elif isinstance(node, ast.ImportFrom):
                target = absolute(m, node)
                for a in node.names:
                    m.imports.append(Import(node.lineno, target, (a.name,), (a.asname or a.name, f"{target}.{a.name}")))
        m.private_attributes = [(node.lineno, node.value.id, node.attr) for node in ast.walk(tree)
                                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                                and is_private(node.attr)]
        modules[m.name] = m
    return modules


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def where(m: Module, line: int) -> str:
    return f"{m.name} ({m.path}:{line})"


def imported_modules(modules: dict[str, Module], m: Module) -> list[tuple[Import, str]]:
    """(import, module of the package it brings in): ``from pkg import sub`` is the module
    pkg.sub, ``from pkg.mod import name`` is pkg.mod; imports of other packages are left out."""
    out = []
    for imp in m.imports:
        for name in imp.names or ("",):
            sub = f"{imp.target}.{name}" if name else ""
            target = sub if sub in modules else imp.target
            if target in modules and target != m.name:
                out.append((imp, target))
    return out


def stage(module_name_: str) -> str | None:
    parts = module_name_.split(".")
    return parts[1] if len(parts) > 1 else None


def package_of(modules: dict[str, Module], name: str) -> str:
    """The stage package a module belongs to, or TOP for the modules at the top of the package."""
    parts = name.split(".")
    if len(parts) > 2 or (len(parts) == 2 and modules[name].is_package):
        return parts[1]
    return TOP


# --- the rules, each a list of findings --------------------------------------------------------

def ui_outside_cli(modules: dict[str, Module]) -> list[str]:
    found = []
    for m in modules.values():
        if stage(m.name) == "cli":
            continue
        for imp in m.imports:
            if imp.target.split(".")[0] in UI_LIBRARIES:
                found.append(f"{where(m, imp.line)}: imports {imp.target} outside greenbench/cli/")
        for imp, target in imported_modules(modules, m):
            if stage(target) == "cli" and m.name != "greenbench.__main__":
                found.append(f"{where(m, imp.line)}: imports the CLI ({target}); the library never does")
    return found


def analysis_imports_measuring(modules: dict[str, Module]) -> list[str]:
    found = []
    for m in modules.values():
        if stage(m.name) not in ANALYSIS:
            continue
        for imp, target in imported_modules(modules, m):
            if stage(target) in MEASURING:
                names = f" ({', '.join(imp.names)})" if imp.names else ""
                found.append(f"{where(m, imp.line)}: analysis stage {stage(m.name)}/ imports the measuring "
                             f"stage {target}{names}")
    return found


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """Strongly connected components of the module graph (Tarjan, iterative), each as one finding
    with the imports that close it."""
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for m in modules.values():
        for imp, target in imported_modules(modules, m):
            graph[m.name].setdefault(target, imp.line)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root, children_of_root in graph.items():
        if root in index:
            continue
        work = [(root, iter(children_of_root))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))
    found = []
    for comp in components:
        edges = [f"{where(modules[a], line)} imports {b}" for a in comp for b, line in graph[a].items() if b in comp]
        found.append(f"import cycle {' <-> '.join(comp)}: " + "; ".join(edges))
    return found


def private_names_across_modules(modules: dict[str, Module]) -> list[str]:
    found = []
    for m in modules.values():
        module_aliases = {}
        for imp in m.imports:
            private = imp.names and is_private(imp.names[0]) and imp.target in modules
            if private and f"{imp.target}.{imp.names[0]}" not in modules:  # a private submodule is a module
                found.append(f"{where(m, imp.line)}: imports private name {imp.names[0]} from {imp.target}")
            local, bound = imp.binds
            if bound in modules and bound != m.name:
                module_aliases[local] = bound
        for line, name, attr in m.private_attributes:
            if name in module_aliases:
                found.append(f"{where(m, line)}: uses private name {attr} of {module_aliases[name]} ({name}.{attr})")
    return found


def imports_not_allowed(modules: dict[str, Module]) -> list[str]:
    top = next(iter(modules)).split(".")[0]
    found = []
    for m in modules.values():
        here = package_of(modules, m.name)
        allowed = ALLOWED.get(here)
        if allowed is None:
            found.append(f"{where(m, 1)}: package {here}/ is not in docs/architecture.md "
                         "(add it, with what it may import)")
            continue
        for imp, target in imported_modules(modules, m):
            there = package_of(modules, target)
            if there in (TOP, here) or "*" in allowed or m.name == f"{top}.__main__":
                continue
            if not any(target == f"{top}.{a}" or target.startswith(f"{top}.{a}.") for a in allowed):
                may = ", ".join(allowed) or "only the top level"
                found.append(f"{where(m, imp.line)}: {here}/ imports {target}; it may import {may}")
    return found


RULES = {
    "typer/rich/click only in cli/": ui_outside_cli,
    "analysis stages never import measuring stages": analysis_imports_measuring,
    "no import cycles": import_cycles,
    "no private names across modules": private_names_across_modules,
    "each package imports only what docs/architecture.md allows": imports_not_allowed,
}


@lru_cache(maxsize=1)
def greenbench_modules() -> dict[str, Module]:
    return parse_package(PACKAGE)


def report(rule: str, found: list[str]) -> str:
    return f"{len(found)} finding(s) against '{rule}' (see docs/architecture.md):\n  " + "\n  ".join(found)


@pytest.mark.parametrize("rule", list(RULES))
def test_the_house_rule_holds(rule):
    found = RULES[rule](greenbench_modules())
    if found:
        pytest.fail(report(rule, found), pytrace=False)


def test_the_package_is_parsed_whole():
    modules = greenbench_modules()
    assert {"greenbench.units", "greenbench.carbon.intensity", "greenbench.cli", "greenbench.measure.runner"} \
        <= set(modules)
    runner = modules["greenbench.measure.runner"]
    assert any(t == "greenbench.carbon.intensity" for _, t in imported_modules(modules, runner))


# --- the checker itself, on a small package that breaks every rule once --------------------------

BROKEN = {
    "__init__.py": "",
    "cli/__init__.py": "import typer\n",
    "report/__init__.py": "",
    "report/html.py": "from rich.table import Table\n",
    "price/__init__.py": "",
    "price/calc.py": "def f():\n    from ..meters.base import is_measurement\n    return is_measurement\n",
    "meters/__init__.py": "",
    "meters/base.py": "def is_measurement(m):\n    return m\n_HIDDEN = 1\n",
    "carbon/__init__.py": "",
    "carbon/a.py": "from pkg.carbon.b import _helper\n",
    "carbon/b.py": "def _helper():\n    from pkg.carbon import a\n    return a\n",
    "profile/__init__.py": "",
    "profile/io.py": "from pkg.meters import base\nX = base._HIDDEN\nimport pkg.cli\n",
}


def test_the_checker_finds_each_kind_of_problem(tmp_path):
    root = tmp_path / "pkg"
    for rel, text in BROKEN.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    modules = parse_package(root)
    ui = ui_outside_cli(modules)
    assert len(ui) == 2
    assert any("pkg.report.html (pkg/report/html.py:1): imports rich.table" in f for f in ui)
    assert any("pkg.profile.io (pkg/profile/io.py:3): imports the CLI (pkg.cli)" in f for f in ui)
    stages = analysis_imports_measuring(modules)
    assert len(stages) == 1 and "pkg.price.calc" in stages[0] and "pkg.meters.base" in stages[0]
    cycles = import_cycles(modules)
    assert len(cycles) == 1 and "pkg.carbon.a <-> pkg.carbon.b" in cycles[0]
    allowed = imports_not_allowed(modules)
    top_only = "it may import only the top level"
    assert allowed == [
        "pkg.price.calc (pkg/price/calc.py:2): price/ imports pkg.meters.base; it may import tradeoff, carbon, profile",
        f"pkg.profile.io (pkg/profile/io.py:1): profile/ imports pkg.meters.base; {top_only}",
        f"pkg.profile.io (pkg/profile/io.py:3): profile/ imports pkg.cli; {top_only}",
    ]
    private = private_names_across_modules(modules)
    assert len(private) == 2
    assert any("pkg.carbon.a (pkg/carbon/a.py:1): imports private name _helper from pkg.carbon.b" in f for f in private)
    hidden = "pkg.profile.io (pkg/profile/io.py:2): uses private name _HIDDEN of pkg.meters.base"
    assert any(hidden in f for f in private)
    # and a package without problems has no findings
    for rel in ("report/html.py", "price/calc.py", "carbon/a.py", "profile/io.py"):
        (root / rel).write_text("")
    (root / "cli/__init__.py").write_text("import typer\nfrom pkg.carbon.b import _helper as h\n")
    clean = parse_package(root)
    helper = "pkg.cli (pkg/cli/__init__.py:2): imports private name _helper from pkg.carbon.b"
    assert [rule(clean) for rule in RULES.values()] == [[], [], [], [helper], []]
