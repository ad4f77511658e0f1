"""The runtime package's layers, read from its import statements.

``domain`` (entities, id rules, the cycle's transitions, the stop-loss evidence rule,
the error taxonomy) imports nothing of the package; ``ports`` (every interface, the
repositories included) only the domain; the use cases (``app``) never an adapter; the
adapters and the listener never a use case. Only the composition root sees everything.
No module imports another module's private name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from python_imports import Imported, imports

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


def _flipbot_parts(found: Imported) -> set[str]:
    """The parts of the package an import reaches: ``flipbot.<part>...``,
    ``from flipbot import <part>`` and relative imports alike."""
    modules = found.targets() - {"flipbot"} if found.module == "flipbot" else {found.module}
    return {m.split(".")[1] for m in modules if m.startswith("flipbot.")}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_layer_imports_only_what_is_below_it(part: str) -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if _part(p) == part]
    assert modules, f"no module in {part}"
    crossing = {
        f"{p.relative_to(PACKAGE)}:{found.line}": sorted(_flipbot_parts(found) - {part})
        for p in modules
        for found in imports(p, PACKAGE.parent)
        if _flipbot_parts(found) - {part} - ALLOWED[part]
    }
    assert crossing == {}


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {_part(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("folder", ["shared", "dev", "functions"])
def test_no_module_imports_another_modules_private_name(folder: str) -> None:
    private = {
        f"{p.relative_to(ROOT)}:{found.line}": list(found.names)
        for p in sorted((ROOT / folder).rglob("*.py"))
        for found in imports(p)
        if any(name.startswith("_") and not name.startswith("__") for name in found.names)
    }
    assert private == {}
