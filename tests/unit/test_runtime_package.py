"""What ships holds what runs in AWS, and nothing else.

The SharedLayer is ``template.yaml``'s ``ContentUri`` folder, copied as ``sam build``
copies a layer without requirements (build artifacts left out). The listener image
installs the runtime package with its ``listener`` extra. These tests read the shipped
source: its files, and every import statement in it (function-level ones included).
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_imports import imports

ROOT = Path(__file__).resolve().parents[2]
#: what ``sam build`` leaves out of a layer's copy (the python_pip workflow's list, the
#: part of it that can appear here)
BUILD_ARTIFACTS = ("__pycache__", "*.pyc", "*.egg-info", "*.egg", ".mypy_cache")
#: the development side: never in the layer or the image
DEV_PARTS = {"twin", "paper", "replay", "commands", "cli", "plots", "fake_server", "fake_openai"}
DEV_IMPORTS = {"flipbot_dev", "moto", "matplotlib", "yaml", "cfnlint", "samtranslator", "pytest"}
#: the distribution each third-party import comes from (import name -> requirement name)
DISTRIBUTIONS = {
    "boto3": "boto3",
    "botocore": "boto3",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "pynamodb": "pynamodb",
    "pydantic": "pydantic",
    "binance": "python-binance",
    "openai": "openai",
    "websockets": "websockets",
    "requests": "python-binance",  # its HTTP client, whose errors the Binance adapter handles
}


def _layer_folder() -> Path:
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    layer = template["Resources"]["SharedLayer"]["Properties"]
    return ROOT / str(layer["ContentUri"])


def _shipped(folder: Path) -> Iterator[Path]:
    """Every file ``sam build`` copies from ``folder`` into the layer."""
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in BUILD_ARTIFACTS):
            continue
        if path.is_file():
            yield path


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    return {target for found in imports(path, ROOT / "shared") for target in found.targets()}


def _module_path(name: str) -> Path | None:
    base = ROOT / "shared" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure(*roots: str) -> tuple[set[str], set[str]]:
    """``(flipbot modules, third-party top-level names)`` reachable from ``roots``."""
    seen: set[str] = set()
    third: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = _module_path(name)
        if path is None or name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top == "flipbot":
                todo.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return seen, third


def _requirements(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0].lower() for spec in specs}


def test_the_layer_folder_holds_the_runtime_package_alone() -> None:
    folder = _layer_folder()
    files = list(_shipped(folder))
    assert files, f"nothing to ship in {folder}"
    outside = [p for p in files if p.relative_to(folder).parts[0] != "flipbot"]
    assert outside == []
    dev = [
        str(p.relative_to(folder))
        for p in files
        if DEV_PARTS & {Path(part).stem for part in p.relative_to(folder).parts}
    ]
    assert dev == []


def test_no_shipped_module_imports_development_code() -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path) if name.split(".")[0] in DEV_IMPORTS
        )
        for path in _shipped(_layer_folder())
        if path.suffix == ".py"
    }
    assert {k: v for k, v in offending.items() if v} == {}


@pytest.mark.parametrize(
    ("roots", "extras", "absent"),
    [
        pytest.param(
            ("flipbot.listener.__main__", "flipbot.listener.wiring", "flipbot.listener.health"),
            ("listener",),
            {"openai", "binance"},
            id="listener-image",
        ),
        pytest.param(
            tuple(
                name
                for handler in sorted((ROOT / "functions").glob("*/app.py"))
                for name in _imports(handler)
                if name.startswith("flipbot")
            ),
            ("lambda",),
            {"websockets"},
            id="functions",
        ),
    ],
)
def test_each_deployable_installs_exactly_what_it_imports(
    roots: tuple[str, ...], extras: tuple[str, ...], absent: set[str]
) -> None:
    modules, third = _closure(*roots)
    assert modules, roots
    unknown = third - set(DISTRIBUTIONS)
    assert unknown == set(), f"map these imports to their distribution: {unknown}"
    needed = {DISTRIBUTIONS[name] for name in third}
    assert needed <= _requirements(*extras)
    assert not (absent & third), f"{roots[0]} reaches {absent & third}"


def test_the_dependencies_layer_pins_what_the_functions_import() -> None:
    lines = (ROOT / "layers" / "dependencies" / "requirements.txt").read_text().splitlines()
    layer = {
        re.split(r"[\s<>=!~\[;]", line, maxsplit=1)[0].lower()
        for line in lines
        if line.strip() and not line.startswith("#")
    }
    assert _requirements("lambda") <= layer


def _entry_points() -> tuple[str, ...]:
    handlers = tuple(
        name
        for handler in sorted((ROOT / "functions").glob("*/app.py"))
        for name in _imports(handler)
        if name.startswith("flipbot")
    )
    listener = ("flipbot.listener.__main__", "flipbot.listener.health")
    return handlers + listener


def test_every_shipped_module_is_reached_from_a_handler_or_the_listener() -> None:
    reached, _ = _closure(*_entry_points())
    shipped = {
        ".".join(p.relative_to(ROOT / "shared").with_suffix("").parts).removesuffix(".__init__")
        for p in _shipped(_layer_folder())
        if p.suffix == ".py"
    }
    assert shipped - reached == set(), "shipped, yet nothing in AWS imports it"
