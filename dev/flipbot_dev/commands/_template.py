"""The ``--template`` option of the commands that read or deploy ``template.yaml``.

The twin deploys the template it is given: its folder is the project (the functions'
``CodeUri`` and the layers' ``ContentUri`` are relative to it). Commands default to
``template.yaml`` in the current directory, the project's root.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT = Path("template.yaml")


def add_template_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--template",
        type=Path,
        default=DEFAULT,
        help="the SAM template (default: template.yaml in the current directory)",
    )


def checked_template(path: Path, command: str) -> Path | None:
    """``path`` made absolute, or ``None`` after saying on stderr that it is missing."""
    if not path.is_file():
        print(
            f"flipbot {command}: no template at {path}: run from the project's root "
            "or pass --template",
            file=sys.stderr,
        )
        return None
    return path.resolve()
