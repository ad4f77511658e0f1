"""The runtime package's layers, read from its import statements.

``domain`` (entities, id rules, the cycle's transitions, the stop-loss evidence rule,
the error taxonomy) imports nothing of the package; ``ports`` (every interface, the
repositories included) only the domain; the use cases (``app``) never an adapter; the
adapters and the listener never a use case. Only the composition root sees everything.
No module imports another module's private name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "flipbot"
#: what each part of the package may import from the package (besides itself)
ALLOWED = {
    "domain": set(),
    "ports": {"domain", "settings"},
    "settings": {"domain", "ai"},
    "events": {"domain"},
    "streams": {"domain", "events"},
    "ai": {"domain", "ports"},
    "app": {"domain", "ports", "events", "settings", "ai"},
    "adapters": {"domain", "ports", "settings", "ai", "observability"},
    "listener": {"domain", "events", "streams", "settings", "observability", "adapters"},
    "observability": {"domain"},
    "composition": {"domain", "ports", "settings", "app", "adapters", "ai", "observability"},
}


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom | ast.Import)]


def _flipbot_parts(node: ast.ImportFrom | ast.Import, path: Path) -> set[str]:
    """The parts of the package ``node`` (in ``path``) imports: ``flipbot.<part>...``,
    ``from flipbot import <part>`` and relative imports alike."""
    if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
    else:
        module = node.module or ""
        if node.level:
            package = path.relative_to(PACKAGE.parent).parent.parts
            anchor = ".".join(package[: len(package) - node.level + 1])
            module = f"{anchor}.{module}" if module else anchor
        modules = [f"{module}.{a.name}" for a in node.names] if module == "flipbot" else [module]
    return {m.split(".")[1] for m in modules if m.startswith("flipbot.")}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_layer_imports_only_what_is_below_it(part: str) -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if _part(p) == part]
    assert modules, f"no module in {part}"
    crossing = {
        f"{p.relative_to(PACKAGE)}:{node.lineno}": sorted(_flipbot_parts(node, p) - {part})
        for p in modules
        for node in _imports(p)
        if _flipbot_parts(node, p) - {part} - ALLOWED[part]
    }
    assert crossing == {}


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {_part(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("folder", ["shared", "dev", "functions"])
def test_no_module_imports_another_modules_private_name(folder: str) -> None:
    private = {
        f"{p.relative_to(ROOT)}:{node.lineno}": [a.name for a in node.names]
        for p in sorted((ROOT / folder).rglob("*.py"))
        for node in _imports(p)
        if isinstance(node, ast.ImportFrom)
        and node.module != "__future__"
        and any(a.name.startswith("_") and not a.name.startswith("__") for a in node.names)
    }
    assert private == {}
