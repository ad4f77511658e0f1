"""Every import statement of a Python file, read with ``ast`` (function-level ones too).

Shared by the tests that hold the package's shape (test_layers, test_runtime_package).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Imported:
    line: int
    module: str  # absolute: a relative import is resolved against the file's package
    names: tuple[str, ...]  # ``from module import <names>``; () for ``import module``

    def targets(self) -> set[str]:
        """The module, and each ``module.name`` (a name may be a submodule)."""
        return {self.module} | {f"{self.module}.{name}" for name in self.names}


def imports(path: Path, source_root: Path | None = None) -> list[Imported]:
    """The imports of ``path``; relative ones resolved when it lies under ``source_root``."""
    package: tuple[str, ...] = ()
    if source_root is not None and path.is_relative_to(source_root):
        package = path.relative_to(source_root).with_suffix("").parts[:-1]
    found: list[Imported] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Imported(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                module = ".".join([*anchor, module] if module else anchor)
            found.append(Imported(node.lineno, module, tuple(a.name for a in node.names)))
    return found
